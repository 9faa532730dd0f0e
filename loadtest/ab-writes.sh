#!/usr/bin/env bash
# Compares the reaction-write throughput of two builds, interleaved, as
# loadtest/ab.sh does for reads: each round starts one build's API and
# worker, posts reactions spread over 100 messages (wrk, as bench.sh's
# "POST reaction, 100 messages"), stops them, then does the same with the
# other build; the order alternates from round to round, since the build
# measured second tends to come out slower. Beside the throughput it
# reports the CPU time (user + system, from /proc) per reaction of
# PostgreSQL, the API, the worker and Redis.
#
#   loadtest/ab-writes.sh OLD NEW     # git revisions, e.g. main~3 HEAD
#
# It writes to the database and Redis that loadtest/bench.sh leaves
# behind (message-api-bench, Redis database 14): run bench.sh first. Both
# builds must accept that database's schema: a build refuses a schema
# newer than its own migrations, so compare builds of one schema version.
# ROUNDS (default 4) rounds of DURATION (default 10s) per build.
#
# OLD_SQL and NEW_SQL, when set, are run (psql) against that database
# before each round of the old and the new build: with the same revision
# twice, they compare two states of the schema under one build, e.g.
#   OLD_SQL="$(sed -n '/^---- create above/,$p' postgres/migrations/009_cheap_checks.sql)" \
#   NEW_SQL="$(sed '/^---- create above/,$d' postgres/migrations/009_cheap_checks.sql)" \
#   loadtest/ab-writes.sh HEAD HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

(($# == 2)) || { echo "usage: loadtest/ab-writes.sh OLD NEW (git revisions)" >&2; exit 2; }
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-10s}
OLD_SQL=${OLD_SQL:-}
NEW_SQL=${NEW_SQL:-}
CONNS=${CONNS:-32}
DB_URL=$(url_with_db "$DATABASE_URL" message-api-bench)
REDIS=$(url_with_db "$REDIS_URL" 14)
work=$(mktemp -d)
cleanup() {
	kill "${api_pid:-}" "${worker_pid:-}" 2>/dev/null || true
	wait 2>/dev/null || true
	git worktree remove --force "$work/src" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

names=()
for rev in "$1" "$2"; do
	name=$(git rev-parse --short "$rev")
	((${#names[@]})) && [ "$name" = "${names[0]}" ] && name+="-b" # one revision twice
	names+=("$name")
	git worktree add -q --detach "$work/src" "$rev"
	(cd "$work/src" && go build -o "$work/api-$name" ./cmd/api && go build -o "$work/worker-$name" ./cmd/worker)
	git worktree remove --force "$work/src"
done

redis_pid=$(redis-cli -u "$REDIS" info server | awk -F: '/^process_id/ {print $2+0}')
ticks() { # pids... -> their CPU ticks, summed
	local p
	for p in "$@"; do [ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'; done | awk '{s += $1} END {print s + 0}'
}
start() { # build name
	"$work/api-$1" -database-url "$DB_URL" -redis-url "$REDIS" -addr 127.0.0.1:18085 -admin-addr 127.0.0.1:16065 >"$work/api.log" 2>&1 &
	api_pid=$!
	"$work/worker-$1" -database-url "$DB_URL" -redis-url "$REDIS" -admin-addr 127.0.0.1:16066 >"$work/worker.log" 2>&1 &
	worker_pid=$!
	for _ in $(seq 100); do
		curl -sf localhost:16065/readyz >/dev/null && curl -sf localhost:16066/readyz >/dev/null && return
		sleep 0.1
	done
	echo "ab-writes: build $1 did not become ready" >&2; tail -3 "$work/api.log" "$work/worker.log" >&2; exit 1
}
stop() { kill "$api_pid" "$worker_pid"; wait "$api_pid" "$worker_pid" 2>/dev/null || true; }

start "${names[0]}"
curl -sf "http://127.0.0.1:18085/messages?limit=100" | python3 -c 'import json,sys; [print(m["id"]) for m in json.load(sys.stdin)["messages"]]' >"$work/ids.txt"
stop
(($(wc -l <"$work/ids.txt") > 0)) || { echo "ab-writes: no messages; run loadtest/bench.sh first" >&2; exit 1; }

for round in $(seq "$ROUNDS"); do
	order=("${names[0]}" "${names[1]}")
	((round % 2 == 0)) && order=("${names[1]}" "${names[0]}")
	for name in "${order[@]}"; do
		sql=$OLD_SQL
		[ "$name" = "${names[1]}" ] && sql=$NEW_SQL
		[ -z "$sql" ] || psql -q -v ON_ERROR_STOP=1 "$DB_URL" -c "$sql" >/dev/null
		start "$name"
		wrk -t2 -c"$CONNS" -d2s -s loadtest/wrk/post-reaction.lua http://127.0.0.1:18085 -- "$work/ids.txt" "ab-warm-$round-$name-$$" >/dev/null
		pg=$(ps -C postgres -o pid=)
		# shellcheck disable=SC2086 # one pid a word
		set -- "$(ticks $pg)" "$(ticks "$api_pid")" "$(ticks "$worker_pid")" "$(ticks "$redis_pid")"
		out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s loadtest/wrk/post-reaction.lua http://127.0.0.1:18085 -- "$work/ids.txt" "ab-$round-$name-$$")
		# shellcheck disable=SC2086
		echo "$name $(echo "$out" | awk '/^Requests\/sec/ {print $2}') $(echo "$out" | awk '/requests in/ {print $1}')" \
			"$(($(ticks $pg) - $1)) $(($(ticks "$api_pid") - $2)) $(($(ticks "$worker_pid") - $3)) $(($(ticks "$redis_pid") - $4))"
		stop
	done
done >"$work/runs.txt"

python3 - "$work/runs.txt" "${names[0]}" "${names[1]}" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
runs, old, new, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
got = {}
for line in open(runs):
    build, rps, n, *ticks = line.split()
    row = [float(rps)] + [int(t) / hz * 1e6 / int(n) for t in ticks]
    for i, v in enumerate(row):
        got.setdefault((build, i), []).append(v)
rounds = len(got[(old, 0)])
print(f"{'':34} {old:>10} {new:>10}  new/old   (median of {rounds} rounds)")
for i, what in enumerate(["reaction posts/s", "PostgreSQL us CPU per reaction", "API us CPU per reaction",
                          "worker us CPU per reaction", "Redis us CPU per reaction"]):
    a, b = statistics.median(got[(old, i)]), statistics.median(got[(new, i)])
    print(f"{what:34} {a:10.0f} {b:10.0f}  {b / a:.3f}")
PY
