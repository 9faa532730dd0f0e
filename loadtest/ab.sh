#!/usr/bin/env bash
# Compares the read throughput of two builds of the API, interleaved:
# each round starts one build, measures every read, stops it, then does
# the same with the other, on the same data and with nothing else
# running, so that drift of the machine (other load, caches, the CPU's
# clock) falls on both alike. One bench.sh run per build cannot tell a
# change of 10 % from that drift. Beside the throughput it reports the
# API process's own CPU time per request (user + system, from /proc),
# which depends far less on what else the machine does.
#
#   loadtest/ab.sh OLD NEW     # git revisions, e.g. main~3 HEAD
#
# It reads the database and Redis that loadtest/bench.sh leaves behind
# (message-api-bench, Redis database 14): run bench.sh first. ROUNDS
# (default 3) rounds of DURATION (default 8s) per read.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

(($# == 2)) || { echo "usage: loadtest/ab.sh OLD NEW (git revisions)" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
DB_URL=$(url_with_db "$DATABASE_URL" message-api-bench)
REDIS=$(url_with_db "$REDIS_URL" 14)
work=$(mktemp -d)
cleanup() {
	kill "${api_pid:-}" 2>/dev/null || true
	wait 2>/dev/null || true
	git worktree remove --force "$work/src" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for rev in "$1" "$2"; do
	name=$(git rev-parse --short "$rev")
	git worktree add -q --detach "$work/src" "$rev"
	(cd "$work/src" && go build -o "$work/api-$name" ./cmd/api)
	git worktree remove --force "$work/src"
done
old=$work/api-$(git rev-parse --short "$1")
new=$work/api-$(git rev-parse --short "$2")

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
start() {
	"$1" -database-url "$DB_URL" -redis-url "$REDIS" -addr 127.0.0.1:18085 -admin-addr 127.0.0.1:16065 >"$work/api.log" 2>&1 &
	api_pid=$!
	for _ in $(seq 100); do curl -sf localhost:16065/readyz >/dev/null && return; sleep 0.1; done
	echo "ab: $1 did not become ready" >&2; tail -5 "$work/api.log" >&2; exit 1
}
start "$old"
id=$(curl -sf "http://127.0.0.1:18085/messages?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"][0]["id"])') ||
	{ echo "ab: no messages; run loadtest/bench.sh first" >&2; exit 1; }
kill "$api_pid"; wait "$api_pid" 2>/dev/null || true
paths=("/messages" "/messages?user_id=seed" "/messages?page=50" "/messages?page=200" "/messages/$id")

for _ in $(seq "$ROUNDS"); do
	for bin in "$old" "$new"; do
		start "$bin"
		wrk -t2 -c64 -d2s http://127.0.0.1:18085/messages >/dev/null # warm up
		for p in "${paths[@]}"; do
			before=$(cpu_ticks "$api_pid")
			out=$(wrk -t2 -c64 -d"$DURATION" "http://127.0.0.1:18085$p")
			ticks=$(($(cpu_ticks "$api_pid") - before))
			echo "$(basename "$bin") $p $(echo "$out" | awk '/^Requests\/sec/ {print $2}') $(echo "$out" | awk '/requests in/ {print $1}') $ticks"
		done
		kill "$api_pid"; wait "$api_pid" 2>/dev/null || true
	done
done >"$work/runs.txt"

# The median of the rounds per build and read, and new/old.
python3 - "$work/runs.txt" "$(basename "$old")" "$(basename "$new")" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
runs, old, new, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rps, cpu = {}, {}
for line in open(runs):
    build, path, r, n, ticks = line.split()
    rps.setdefault((build, path), []).append(float(r))
    cpu.setdefault((build, path), []).append(int(ticks) / hz * 1e6 / int(n))
paths = list(dict.fromkeys(p for _, p in rps))
rounds = len(next(iter(rps.values())))
for title, got, fmt in (("requests/s", rps, "{:14.0f}"), ("API CPU us per request", cpu, "{:14.1f}")):
    print(f"{'read':40} {old:>14} {new:>14}  new/old   ({title}, median of {rounds} rounds)")
    for p in paths:
        a, b = statistics.median(got[(old, p)]), statistics.median(got[(new, p)])
        print(f"{p[:40]:40} {fmt.format(a)} {fmt.format(b)}  {b / a:.3f}")
PY
