-- pgbench script: one single-row INSERT per transaction, the baseline that
-- POST reaction throughput is compared with.
\set a random(1, 1000000)
insert into bench_insert (a, b, created_at) values (:a, 'like', now());
