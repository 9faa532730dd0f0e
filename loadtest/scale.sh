#!/usr/bin/env bash
# The scale benchmark (loadtest/bench.sh scale): a million messages in a
# thousand channels, on a PostgreSQL of its own with production settings,
# read and written as a deployment is, then a soak of sustained writes.
#
#   loadtest/bench.sh scale                       # 1 M messages, 1,000 channels, 10 M reactions; 15-minute soak
#   MESSAGES=10000 CHANNELS=10 REACTIONS=100000 SOAK_MINUTES=1 loadtest/bench.sh scale   # a quick look
#
# 1. Starts a PostgreSQL of its own (initdb in SCALE_DIR, default
#    /var/tmp/message-api-scale, on port SCALE_PG_PORT, default 15432) with
#    the settings of docs/operations.md: autovacuum on, shared_buffers a
#    quarter of memory up to 4 GiB, and the rest below.
# 2. Seeds MESSAGES messages over CHANNELS channels of skewed sizes with
#    REACTIONS reactions (loadtest/seed), and reports the bytes a message,
#    a reaction and a view take. SEED=0 reuses the database of the last
#    run instead (its soak has changed it).
# 3. Starts the API and one worker with their defaults (Redis database 13
#    of REDIS_URL, emptied first) and a bare net/http hello world, and
#    measures each read and write with wrk -t1 -cCONNS for DURATION, as
#    ratios to the hello world of the same run, with the CPU each process
#    spends per reaction.
# 4. Soaks for SOAK_MINUTES (15) at SOAK_SHARE (0.8) of the measured
#    closed-loop POST rate plus READ_RATE (50) random-channel reads a
#    second, both timed from each request's scheduled start
#    (loadtest/fixedrate), and samples every minute: projection lag (p95
#    and max of one sample a second), write and read p99, dead rows of
#    each table against its live rows, the HOT share of the updates of
#    reactions, autovacuum runs, table and index sizes, and the RSS of
#    the API and the worker.
#
# Needs wrk, psql, initdb and pg_ctl (the PostgreSQL server package),
# redis-cli, and the Redis of make run. The two generators of the soak
# hold at most 224 connections, within the API's -max-conns-per-client.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

MESSAGES=${MESSAGES:-1000000}
CHANNELS=${CHANNELS:-1000}
REACTIONS=${REACTIONS:-10000000}
SEED=${SEED:-1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
SOAK_MINUTES=${SOAK_MINUTES:-15}
SOAK_SHARE=${SOAK_SHARE:-0.8}
READ_RATE=${READ_RATE:-50}
SCALE_DIR=${SCALE_DIR:-/var/tmp/message-api-scale}
PG_PORT=${SCALE_PG_PORT:-15432}
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/messageapi?sslmode=disable"
REDIS=$(url_with_db "$REDIS_URL" 13)
API=http://127.0.0.1:18180
work=$(mktemp -d)
pids=()
PG_DATA=$SCALE_DIR/pg
cleanup() {
	local status=$?
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	if ((status)); then # show why
		for f in "$work"/*.log; do echo "== $f" >&2; tail -n 5 "$f" >&2; done
	fi
	stop_pg
	rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh

pg_bin() {
	local dir
	if command -v "$1" >/dev/null; then command -v "$1"; return; fi
	for dir in /usr/lib/postgresql/*/bin; do [[ -x $dir/$1 ]] && { echo "$dir/$1"; return; }; done
	echo "scale: $1 is missing (the PostgreSQL server package)" >&2
	exit 1
}
as_pg_owner() { # the server refuses to run as root
	if [[ $(id -u) == 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
stop_pg() {
	[[ -f $PG_DATA/postmaster.pid ]] && as_pg_owner "$(pg_bin pg_ctl)" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
}
for tool in wrk psql redis-cli; do
	command -v $tool >/dev/null || { echo "scale: $tool is missing" >&2; exit 1; }
done

# The PostgreSQL settings of docs/operations.md, for this machine.
mem_kb=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
shared_mb=$((mem_kb / 4 / 1024)); ((shared_mb > 4096)) && shared_mb=4096
cache_mb=$((mem_kb * 3 / 4 / 1024))
pg_settings=(
	-c "shared_buffers=${shared_mb}MB" -c "effective_cache_size=${cache_mb}MB"
	-c autovacuum=on -c autovacuum_naptime=10s -c autovacuum_vacuum_cost_limit=2000
	-c maintenance_work_mem=1GB -c work_mem=16MB
	-c max_wal_size=8GB -c min_wal_size=1GB -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9
	-c random_page_cost=1.1 -c effective_io_concurrency=200
	-c max_connections=200 -c synchronous_commit=on
)

mkdir -p "$SCALE_DIR"
[[ $(id -u) == 0 ]] && chown postgres: "$SCALE_DIR"
stop_pg
if [[ $SEED != 0 ]]; then
	rm -rf "$PG_DATA"
fi
if [[ ! -d $PG_DATA ]]; then
	as_pg_owner "$(pg_bin initdb)" -D "$PG_DATA" -U postgres --auth=trust >"$work/initdb.log" 2>&1
fi
as_pg_owner "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
	-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DATA ${pg_settings[*]}" start >/dev/null
PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
export PG_PID
echo "scale: PostgreSQL $(psql "${DB_URL%/*}/postgres" -Atc 'show server_version') on port $PG_PORT, shared_buffers ${shared_mb}MB, autovacuum $(psql "${DB_URL%/*}/postgres" -Atc 'show autovacuum')" >&2
redis-cli -u "$REDIS" flushdb >/dev/null

if [[ $SEED != 0 ]]; then
	psql "${DB_URL%/*}/postgres" -qc 'create database messageapi'
	echo "scale: seeding $MESSAGES messages, $CHANNELS channels, $REACTIONS reactions" >&2
	seed_start=$(date +%s)
	go run ./loadtest/seed -database-url "$DB_URL" -messages "$MESSAGES" -channels "$CHANNELS" -reactions "$REACTIONS" 2>"$work/seed.log"
	seed_seconds=$(($(date +%s) - seed_start))
	tail -n 3 "$work/seed.log" >&2
else
	seed_seconds="(reused)"
fi
# The programs under test: this tree's, or with BASE_REV those of an
# earlier commit, on the seeded database migrated down to that commit's
# schema (for a before-and-after of one seed).
if [[ -n ${BASE_REV:-} ]]; then
	git worktree add -q --detach "$work/base" "$BASE_REV"
	(cd "$work/base" && go build -o "$work/api" ./cmd/api && go build -o "$work/worker" ./cmd/worker)
	base_version=$(find "$work/base/postgres/migrations" -name '[0-9]*.sql' | sed 's|.*/0*\([0-9]*\)_.*|\1|' | sort -n | tail -1)
	git worktree remove --force "$work/base"
	echo "scale: the API and worker of $BASE_REV, schema migrated down to version $base_version" >&2
	go run ./loadtest/seed -database-url "$DB_URL" -down-to "$base_version"
else
	go build -o "$work/api" ./cmd/api
	go build -o "$work/worker" ./cmd/worker
fi
go build -o "$work/hello" ./loadtest/hello
go build -o "$work/fixedrate" ./loadtest/fixedrate
# Bytes per message (messages and its indexes), per reaction (reactions
# and its indexes) and per view, and all of it per reaction.
storage=$(psql "$DB_URL" -At -F' ' -c "
	select (select count(*) from messages), (select count(*) from reactions),
		pg_total_relation_size('messages'), pg_total_relation_size('reactions'), pg_total_relation_size('message_views'),
		coalesce((select pg_total_relation_size(c.oid) from pg_class c where c.relname = 'reaction_changes' and c.relkind = 'r'), 0)")
read -r n_msg n_react sz_msg sz_react sz_view sz_changes <<<"$storage"
storage_line=$(awk -v nm="$n_msg" -v nr="$n_react" -v m="$sz_msg" -v r="$sz_react" -v v="$sz_view" -v c="$sz_changes" 'BEGIN {
	printf "%d messages, %d reactions: %.0f bytes per message, %.0f per reaction, %.0f per view; %.0f bytes in all per reaction",
		nm, nr, m / nm, r / nr, v / nm, (m + r + v + c) / nr }')

common=(-database-url "$DB_URL" -redis-url "$REDIS")
"$work/hello" -addr 127.0.0.1:18190 & pids+=($!)
"$work/api" "${common[@]}" -addr 127.0.0.1:18180 -admin-addr 127.0.0.1:16160 >"$work/api.log" 2>&1 & api_pid=$!; pids+=($api_pid)
"$work/worker" "${common[@]}" -admin-addr 127.0.0.1:16161 >"$work/worker.log" 2>&1 & worker_pid=$!; pids+=($worker_pid)
for _ in $(seq 300); do curl -sf localhost:16160/readyz >/dev/null && curl -sf localhost:16161/readyz >/dev/null && break; sleep 0.1; done
redis_pid=$(redis-cli -u "$REDIS" info server | awk -F: '/^process_id/ {print $2+0}')

# Changes not yet folded, and the age of the oldest: in reaction_changes,
# or, before migration 011, in the rows whose version is ahead of the
# projected one.
if [[ $(psql "$DB_URL" -Atc "select to_regclass('reaction_changes') is not null") == t ]]; then
	pending_sql="select count(*) from reaction_changes"
	lag_sql="select coalesce(extract(epoch from now() - min(changed_at)), 0)::numeric(10,3) from reaction_changes"
else
	pending_sql="select count(*) from reactions where version <> projected_version"
	lag_sql="select coalesce(extract(epoch from now() - min(updated_at)), 0)::numeric(10,3) from reactions where version <> projected_version"
fi

# What the reads and writes aim at: every channel's page 1, the largest
# channel, readers who reacted and readers who never did, and 10,000
# messages taken at random for the posts.
psql "$DB_URL" -Atc "select channel_id from messages group by channel_id" | sed 's|^|/channels/|; s|$|/messages|' >"$work/channel-paths.txt"
read -r big big_size <<<"$(psql "$DB_URL" -At -F' ' -c "select channel_id, count(*) from messages group by channel_id order by count(*) desc limit 1")"
{
	psql "$DB_URL" -Atc "select user_id from reactions tablesample system (1) limit 5000"
	seq 5000 | sed 's/^/reader-/'
} | shuf >"$work/readers.txt"
psql "$DB_URL" -Atc "select id from messages tablesample system (2) where deleted_at is null order by random() limit 10000" >"$work/ids.txt"
# A deep page: the next_cursor of page 900 (9,000 messages in, the
# deepest page= goes is 1,000), or of half-way down a smaller channel.
deep_page=$((big_size / 20 < 900 ? big_size / 20 : 900))
deep_cursor=$(curl -sf "$API/channels/$big/messages?page=$deep_page" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')

bench_wrk() { # name path-or-url [wrk script and its arguments]
	local name=$1 url=$2; shift 2
	local out
	if (($#)); then
		local script=$1; shift
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" -- "$@")
	else
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$url")
	fi
	echo "$out" >"$work/wrk-$name.txt"
	echo "$out" | awk '/Non-2xx|Socket errors/ {print}' >&2
	echo "$out" | rps
}
latency() { # name: p50/p99 of a wrk run, in ms
	awk '$1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} END {printf "%s/%s", p50, p99}' "$work/wrk-$1.txt"
}
requests() { awk '/requests in/ {print $1}' "$work/wrk-$1.txt"; }

echo "scale: reads and writes, wrk -t1 -c$CONNS -d$DURATION each" >&2
hello=$(bench_wrk hello http://127.0.0.1:18190/)
hot=$(bench_wrk hot "$API/channels/$big/messages")
random=$(bench_wrk random "$API" loadtest/wrk/paths.lua "$work/channel-paths.txt")
random_reader=$(bench_wrk random-reader "$API" loadtest/wrk/paths.lua "$work/channel-paths.txt" "$work/readers.txt")
page50=$(bench_wrk page50 "$API/channels/$big/messages?page=50")
deep=$(bench_wrk deep "$API/channels/$big/messages?cursor=$deep_cursor")
cpu_snapshot "$api_pid" "$worker_pid" "$redis_pid"; cpu_ticks >"$work/cpu-before"
busy0=$(busy_ticks)
post=$(bench_wrk post "$API" loadtest/wrk/post-reaction.lua "$work/ids.txt" closed)
busy_post=$(busy_per "$busy0" "$(busy_ticks)" "$(requests post)")
# The worker's share of those posts: until nothing is pending.
for _ in $(seq 1200); do (($(psql "$DB_URL" -Atc "$pending_sql") == 0)) && break; sleep 0.5; done
cpu_snapshot "$api_pid" "$worker_pid" "$redis_pid"; cpu_ticks >"$work/cpu-after"
cpu_post=$(cpu_per_write "$work/cpu-before" "$work/cpu-after" "$(requests post)")

soak_rate=$(awk -v r="$post" -v s="$SOAK_SHARE" 'BEGIN { printf "%d", r * s }')
echo "scale: soak, $SOAK_MINUTES minutes at $soak_rate posts/s ($SOAK_SHARE of $post) and $READ_RATE random-channel reads/s" >&2
(while :; do echo "$(date +%s) $(psql "$DB_URL" -Atc "$lag_sql" 2>/dev/null || echo nan)"; sleep 1; done) >"$work/lag.txt" &
lag_sampler=$!; pids+=($lag_sampler)
table_sql="select relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count,
	pg_table_size(relid), pg_indexes_size(relid)
	from pg_stat_user_tables where relname in ('messages', 'reactions', 'message_views', 'reaction_changes') order by relname"
psql "$DB_URL" -At -F' ' -c "$table_sql" >"$work/tables-0.txt"
p99() { sed -n 's/.* p99 \([^ ]*\) .*/\1/p' "$1"; }
soak_rows=()
for m in $(seq "$SOAK_MINUTES"); do
	from=$(date +%s)
	"$work/fixedrate" -url "$API" -reactions "$work/ids.txt" -run "soak$m" -rate "$soak_rate" -duration 60s -conns 192 >"$work/soak-post-$m.txt" &
	poster=$!
	"$work/fixedrate" -url "$API" -paths "$work/channel-paths.txt" -rate "$READ_RATE" -duration 60s -conns 32 >"$work/soak-read-$m.txt" &
	reader=$!
	wait "$poster" "$reader"
	to=$(date +%s)
	psql "$DB_URL" -At -F' ' -c "$table_sql" >"$work/tables-$m.txt"
	lag=$(awk -v a="$from" -v b="$to" '$1 >= a && $1 < b && $2 != "nan" {print $2}' "$work/lag.txt" | sort -n |
		awk '{v[NR] = $1} END { if (NR == 0) { print "n/a"; exit } i = int(NR * 0.95); if (i < 1) i = 1; printf "p95 %.2fs max %.2fs", v[i], v[NR] }')
	tables=$(awk '
		FNR == NR { upd[$1] = $4; hot[$1] = $5; next }
		{
			# reaction_changes is a queue: a few thousand live rows, each
			# deleted within seconds; its dead rows are told as a count.
			if ($1 == "reaction_changes") queue = sprintf("; reaction_changes %d live, %d dead", $2, $3)
			else dead = dead sprintf("%s%s %.1f%%", dead == "" ? "" : ", ", $1, $2 > 0 ? 100 * $3 / $2 : 0)
			if ($1 == "reactions") { du = $4 - upd[$1]; dh = $5 - hot[$1]; rsize = ($7 + $8) / 1048576 }
			if ($1 == "message_views") vsize = ($7 + $8) / 1048576
			runs += $6
		}
		END {
			hotshare = du > 0 ? sprintf("%.0f%% of %d", 100 * dh / du, du) : "none"
			printf "dead/live %s%s; reactions updates HOT %s; autovacuum runs %d; reactions %.0f MiB, views %.0f MiB",
				dead, queue, hotshare, runs, rsize, vsize
		}' "$work/tables-$((m - 1)).txt" "$work/tables-$m.txt")
	row="minute $m: lag $lag; write p99 $(p99 "$work/soak-post-$m.txt"), read p99 $(p99 "$work/soak-read-$m.txt"); $tables; RSS API $(rss_mib "$api_pid") MiB, worker $(rss_mib "$worker_pid") MiB"
	echo "$row" >&2
	soak_rows+=("$row")
done
kill "$lag_sampler" 2>/dev/null || true

cat <<REPORT

machine: $(nproc) cores, $((mem_kb / 1024 / 1024)) GiB; every process shares them; wrk -t1 -c$CONNS -d$DURATION
PostgreSQL of its own: shared_buffers ${shared_mb}MB, autovacuum on (docs/operations.md)
seeded: $storage_line (seed took ${seed_seconds}s)
reads and writes (requests/s, ratio to a bare net/http hello world; p50/p99 ms)
  hello world                                  $hello
  page 1 of the largest channel ($big)         $hot   $(ratio "$hot" "$hello")   $(latency hot)
  page 1 of a random channel of $(wc -l <"$work/channel-paths.txt")           $random   $(ratio "$random" "$hello")   $(latency random)   ($(ratio "$random" "$hot") of the largest)
  the same, with a reader's user_id            $random_reader   $(ratio "$random_reader" "$hello")   $(latency random-reader)   ($(ratio "$random_reader" "$hot") of the largest)
  page=50 of the largest channel               $page50   $(ratio "$page50" "$hello")   $(latency page50)
  a deep cursor page (page $deep_page's next)     $deep   $(ratio "$deep" "$hello")   $(latency deep)
  reaction POST, 10,000 random messages        $post   $(ratio "$post" "$hello")   $(latency post)
    CPU: $cpu_post (the write and its projection)
    machine's busy CPU: $busy_post us per reaction during the posts
soak: $SOAK_MINUTES minutes at $soak_rate posts/s ($SOAK_SHARE of $post) and $READ_RATE random-channel reads/s, latencies from the scheduled start
$(printf '  %s\n' "${soak_rows[@]}")
REPORT
