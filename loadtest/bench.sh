#!/usr/bin/env bash
# Measures the service against baselines on the same machine, in one run,
# and prints ratios (absolute numbers depend on the machine; ratios much
# less). Needs wrk, hey, pgbench and psql (apt-get install -y wrk hey
# postgresql-client), and the PostgreSQL and Redis of make run.
#
#   loadtest/bench.sh            # all of it, about nine minutes
#   loadtest/bench.sh scale      # a million messages in a thousand channels on a PostgreSQL
#                                # of its own, and a 15-minute soak (loadtest/scale.sh)
#
# The API runs as in production: access log on (to a file), metrics on,
# near cache and group commit at their defaults. Reads use CONNS
# connections for the hello world and the API alike; writes use
# WRITE_CONNS for pgbench and the API alike.
#
# It uses its own database (message-api-bench, recreated each run) and
# Redis database 14, on the servers of DATABASE_URL and REDIS_URL, and its
# own ports (18080 API, 16060/16061 admin, 18090 baseline), so it leaves
# the service's data alone. Like scripts/services.sh, it creates the
# database through ADMIN_DATABASE_URL (default: the postgres superuser on
# the server of DATABASE_URL), owned by the user of DATABASE_URL.
set -euo pipefail
if [[ ${1:-} == scale ]]; then
	shift
	exec "$(dirname "$0")/scale.sh" "$@"
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
WRITE_CONNS=${WRITE_CONNS:-32}
DRAIN_DURATION=${DRAIN_DURATION:-30s}
ADMIN_URL=$(admin_database_url "$DATABASE_URL")
DB_URL=$(url_with_db "$DATABASE_URL" message-api-bench)
DB_OWNER=$(url_part "$DATABASE_URL" user)
REDIS=$(url_with_db "$REDIS_URL" 14)
API=http://127.0.0.1:18080
work=$(mktemp -d)
pids=()
cleanup() {
	local status=$?
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	if ((status)); then # show why
		for f in "$work"/*.log; do echo "== $f" >&2; tail -n 5 "$f" >&2; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh

for tool in wrk hey pgbench psql redis-cli; do
	command -v $tool >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
echo "bench: database message-api-bench on $(url_part "$DB_URL" host):$(url_part "$DB_URL" port 5432) owned by $DB_OWNER, Redis database 14 on $(url_part "$REDIS" host):$(url_part "$REDIS" port 6379)" >&2
./scripts/services.sh up run
psql "$ADMIN_URL" -qc 'drop database if exists "message-api-bench"' -c "create database \"message-api-bench\" owner \"$DB_OWNER\""
redis-cli -u "$REDIS" flushdb >/dev/null

go build -o "$work/api" ./cmd/api
go build -o "$work/worker" ./cmd/worker
go build -o "$work/hello" ./loadtest/hello
go build -o "$work/fixedrate" ./loadtest/fixedrate
go build -o "$work/sselag" ./loadtest/sselag
go build -o "$work/tokens" ./loadtest/tokens
common=(-database-url "$DB_URL" -redis-url "$REDIS")
start_worker() {
	"$work/worker" "${common[@]}" -admin-addr 127.0.0.1:16061 >>"$work/worker.log" 2>&1 &
	worker_pid=$!
	pids+=($worker_pid)
}
"$work/hello" -addr 127.0.0.1:18090 & pids+=($!)
"$work/api" "${common[@]}" -addr 127.0.0.1:18080 -admin-addr 127.0.0.1:16060 >"$work/api.log" 2>&1 & api_pid=$!; pids+=($api_pid)
start_worker
for _ in $(seq 100); do curl -sf localhost:16060/readyz >/dev/null && curl -sf localhost:16061/readyz >/dev/null && break; sleep 0.1; done

errors() { awk '/Non-2xx|Socket errors/ {print}'; }
bench_wrk() { # name url [arguments of the wrk script]
	local name=$1 url=$2; shift 2
	local out
	if (($#)); then
		out=$(wrk -t2 -c"$WRITE_CONNS" -d"$DURATION" --latency -s loadtest/wrk/post-reaction.lua "$url" -- "$@")
	elif [[ -n ${SCRIPT:-} ]]; then # SCRIPT="script.lua args..."
		local script args
		read -r script args <<<"$SCRIPT"
		# shellcheck disable=SC2086 # the script's arguments split on spaces
		out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" -- $args)
	else
		out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$url")
	fi
	echo "$out" >"$work/wrk-$name.txt"
	echo "$out" | errors >&2
	echo "$out" | rps
}
# peak_rss pid...: samples the RSS of the processes every 0.2s until
# stopped, keeping the peak of each in $work/rss-<pid>.
peak_rss() {
	while :; do
		for p in "$@"; do
			r=$(rss_mib "$p" 2>/dev/null || echo 0)
			prev=$(cat "$work/rss-$p" 2>/dev/null || echo 0)
			((r > prev)) && echo "$r" >"$work/rss-$p"
		done
		sleep 0.2
	done
}

redis_pid=$(redis-cli -u "$REDIS" info server | awk -F: '/^process_id/ {print $2+0}')
requests() { awk '/requests in/ {print $1}' "$work/wrk-$1.txt"; }
wait_projected() {
	for _ in $(seq 600); do
		lag=$(curl -s localhost:16061/metrics | awk '/^messageapi_projection_lag_seconds/ {print $2}')
		[ "$lag" = 0 ] && break; sleep 0.1
	done
}

echo "seeding 10,000 messages" >&2
hey -n 10000 -c 25 -m POST -T application/json -d '{"text":"seed message","user_id":"seed"}' "$API/messages" >"$work/seed.txt"
grep -q '\[201\]	10000 responses' "$work/seed.txt" || { cat "$work/seed.txt" >&2; exit 1; }
curl -sf "$API/messages?limit=100" | python3 -c 'import json,sys; [print(m["id"]) for m in json.load(sys.stdin)["messages"]]' >"$work/ids-spread.txt"
head -1 "$work/ids-spread.txt" >"$work/ids-hot.txt"

echo "reads" >&2
redis_get=$(redis-benchmark -u "$REDIS" --csv -t get -c "$CONNS" -n 300000 2>/dev/null | awk -F'"' '$2 == "GET" {print $4}')
hello=$(bench_wrk hello http://127.0.0.1:18090/)
page1=$(bench_wrk page1 "$API/messages")
page1_own=$(bench_wrk page1-own "$API/messages?user_id=seed")  # one reader, no reactions
page50=$(bench_wrk page50 "$API/messages?page=50")
page200=$(bench_wrk page200 "$API/messages?page=200")
message=$(bench_wrk message "$API/messages/$(head -1 "$work/ids-spread.txt")")
echo "read latency at half the maximum rate" >&2
half_page1=$("$work/fixedrate" -url "$API/messages" -rate "$(half "$page1")" -duration "$DURATION")
half_page50=$("$work/fixedrate" -url "$API/messages?page=50" -rate "$(half "$page50")" -duration "$DURATION")

echo "writes" >&2
psql "$DB_URL" -qc 'create table if not exists bench_insert (id bigserial primary key, a int not null, b text not null, created_at timestamptz not null)'
busy0=$(busy_ticks)
pgbench -n -f loadtest/pgbench-insert.sql -c "$WRITE_CONNS" -j 2 -T "${DURATION%s}" "$DB_URL" >"$work/pgbench.txt" 2>/dev/null
busy_pgbench=$(busy_per "$busy0" "$(busy_ticks)" "$(awk '/transactions actually processed/ {print $NF}' "$work/pgbench.txt")")
pgbench_tps=$(awk '/^tps/ {print $3}' "$work/pgbench.txt")
peak_rss "$api_pid" "$worker_pid" &
sampler=$!
cpu_snapshot "$api_pid" "$worker_pid" "$redis_pid"; cpu_ticks >"$work/cpu-before"
busy0=$(busy_ticks)
spread=$(bench_wrk spread "$API" "$work/ids-spread.txt" spread)
busy_spread=$(busy_per "$busy0" "$(busy_ticks)" "$(requests spread)")
wait_projected # the worker's share of those writes
cpu_snapshot "$api_pid" "$worker_pid" "$redis_pid"; cpu_ticks >"$work/cpu-after"
cpu_spread=$(cpu_per_write "$work/cpu-before" "$work/cpu-after" "$(requests spread)")
hot=$(bench_wrk hot "$API" "$work/ids-hot.txt" hot)
echo "write latency and projection lag at half the maximum rate" >&2
half_spread=$("$work/fixedrate" -url "$API" -reactions "$work/ids-spread.txt" -run half -rate "$(half "$spread")" -duration "$DURATION")
lag_half=$(go run ./loadtest/lagprobe -base "$API" -load "$(half "$spread")" -messages 100 -duration 20s | tail -1)
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
api_rss=$(cat "$work/rss-$api_pid"); worker_rss=$(cat "$work/rss-$worker_pid")

echo "projection throughput" >&2
wait_projected
# The latest 100 messages now carry ten inline reactions each: the first
# page as it looks on a busy chat.
page1_full=$(bench_wrk page1-full "$API/messages")
page1_bytes=$(curl -s "$API/messages" | wc -c)
# Redis memory of the cached range: the entries and the index, per
# message, with ten inline reactions each (the newest 100 messages) and
# without (the rest).
redis-cli -u "$REDIS" --scan --pattern '*cache}:msg:*' >"$work/cache-keys.txt"
cache_mem=$(while read -r k; do redis-cli -u "$REDIS" memory usage "$k"; done <"$work/cache-keys.txt" |
	awk '{n++; s+=$1} END {printf "%d cached messages, %.0f bytes each on average", n, s/n}')

echo "client reads: random readers, a hot message on page 1" >&2
# A chat client reads as its user: with user_id, or with a token of its
# own (authentication on, in an API of its own on the same data). Half
# of the readers reacted to the hot message, half never reacted.
hot_id=$(cat "$work/ids-hot.txt")
hot_reactions=$(psql "$DB_URL" -Atc "select count(*) from reactions where message_id = '$hot_id' and deleted_at is null")
{
	psql "$DB_URL" -Atc "select user_id from reactions where message_id = '$hot_id' and deleted_at is null order by random() limit 5000"
	seq 5000 | sed 's/^/reader-/'
} | shuf >"$work/readers.txt"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$work/tokens" -secret "$secret" <"$work/readers.txt" >"$work/tokens.txt"
"$work/api" "${common[@]}" -addr 127.0.0.1:18081 -admin-addr 127.0.0.1:16062 -auth-secret "$secret" >"$work/api-auth.log" 2>&1 & api_auth_pid=$!; pids+=($api_auth_pid)
for _ in $(seq 100); do curl -sf localhost:16062/readyz >/dev/null && break; sleep 0.1; done
hello_client=$(bench_wrk hello-client http://127.0.0.1:18090/)
page1_anon=$(bench_wrk page1-anon "$API/messages")
page1_reader=$(SCRIPT="loadtest/wrk/read-as.lua $work/readers.txt /messages user" bench_wrk page1-reader "$API")
page1_token=$(SCRIPT="loadtest/wrk/read-as.lua $work/tokens.txt /messages token" bench_wrk page1-token http://127.0.0.1:18081)
message_reader=$(SCRIPT="loadtest/wrk/read-as.lua $work/readers.txt /messages/$hot_id user" bench_wrk message-reader "$API")
mixed=$(SCRIPT="loadtest/wrk/mixed.lua $work/ids-spread.txt $work/readers.txt mixed" bench_wrk mixed "$API")
echo "client read latency at half the maximum rate" >&2
half_anon=$("$work/fixedrate" -url "$API/messages" -rate "$(half "$page1_anon")" -duration "$DURATION")
half_reader=$("$work/fixedrate" -url "$API/messages" -readers "$work/readers.txt" -rate "$(half "$page1_reader")" -duration "$DURATION")
half_token=$("$work/fixedrate" -url http://127.0.0.1:18081/messages -tokens "$work/tokens.txt" -rate "$(half "$page1_token")" -duration "$DURATION")
half_mixed=$("$work/fixedrate" -url "$API" -mix "$work/ids-spread.txt" -readers "$work/readers.txt" -rate "$(half "$mixed")" -duration "$DURATION")
own_lookups=$(curl -s localhost:16060/metrics | awk '/^messageapi_own_reactions_lookups_total/ {printf "%s ", $0}')
kill "$api_auth_pid" 2>/dev/null; wait "$api_auth_pid" 2>/dev/null || true
for _ in $(seq 600); do
	lag=$(curl -s localhost:16061/metrics | awk '/^messageapi_projection_lag_seconds/ {print $2}')
	[ "$lag" = 0 ] && break; sleep 0.1
done

kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
backlog_req=$(bench_wrk backlog "$API" "$work/ids-spread.txt" backlog)
backlog=$(awk '/requests in/ {print $1}' "$work/wrk-backlog.txt")
start=$(date +%s.%N)
start_worker
for _ in $(seq 100); do curl -sf localhost:16061/readyz >/dev/null && break; sleep 0.05; done
# Every backlog request created a reaction, so done is when the new worker
# has folded that many events (the lag gauge only updates every 2s).
for _ in $(seq 6000); do
	folded=$(curl -s localhost:16061/metrics | awk '/^messageapi_projection_events_total/ {print $2}')
	awk -v f="${folded:-0}" -v b="$backlog" 'BEGIN { exit !(f >= b) }' && break; sleep 0.02
done
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')

echo "a backlog under the full write rate" >&2
# A backlog written with no worker, then a worker started while the posts
# go on at full rate: the backlog must shrink, though the worker shares
# the cores with the writes. Done is fewer unprojected reactions than one
# batch (the worker's -batch-size, 500).
kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
bench_wrk drain-backlog "$API" "$work/ids-spread.txt" drain-backlog >/dev/null
unprojected() { psql "$DB_URL" -Atc "select count(*) from reaction_changes"; }
drain_from=$(unprojected)
wrk -t2 -c"$WRITE_CONNS" -d"$DRAIN_DURATION" -s loadtest/wrk/post-reaction.lua "$API" -- "$work/ids-spread.txt" drain >"$work/wrk-drain.txt" &
drain_wrk=$!
pids+=($drain_wrk)
start=$(date +%s.%N)
start_worker
drained="not under 500 while the posts ran ($DRAIN_DURATION)"
while kill -0 "$drain_wrk" 2>/dev/null; do
	if (($(unprojected) < 500)); then
		drained="under 500 in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s"
		break
	fi
	sleep 0.5
done
wait "$drain_wrk" || true
drain_rps=$(rps <"$work/wrk-drain.txt")
drained+="; $(unprojected) unprojected when the posts stopped"
# What follows counts live events: let the last posts' folds end first.
for _ in $(seq 600); do (($(unprojected) == 0)) && break; sleep 0.1; done
sleep 1

echo "live events" >&2
sse=$("$work/sselag" -bases "$API" -clients 100 -rate 200 -messages 20 -duration 15s 2>&1 | tr '\n' ';')

echo "visibility lag" >&2
lag_idle=$(go run ./loadtest/lagprobe -base "$API" -duration 15s | tail -1)
lag_load=$(go run ./loadtest/lagprobe -base "$API" -load 500 -duration 20s)

cat <<REPORT

machine: $(nproc) cores; every process shares them; reads wrk -t2 -c$CONNS, writes wrk -t2 -c$WRITE_CONNS, -d$DURATION
reads (requests/s, ratio to a bare net/http hello world)
  redis-benchmark GET                                   $redis_get   $(ratio "$redis_get" "$hello")
  hello world                                           $hello
  GET /messages (cached page, no reactions)             $page1   $(ratio "$page1" "$hello")
  GET /messages?user_id=seed (the same, one reader)     $page1_own   $(ratio "$page1_own" "$hello")   ($(ratio "$page1_own" "$page1") of page 1 without)
  GET /messages (cached page, 10 reactions per message) $page1_full   $(ratio "$page1_full" "$hello")   ($page1_bytes bytes a page)
  GET /messages?page=50 (cached)                        $page50   $(ratio "$page50" "$hello")
  GET /messages?page=200 (PostgreSQL)                    $page200   $(ratio "$page200" "$hello")
  GET /messages/{id} (PostgreSQL, no reactions)         $message   $(ratio "$message" "$hello")
  at half the maximum rate, page 1:  $half_page1
  at half the maximum rate, page 50: $half_page50
writes (per second, $WRITE_CONNS connections each, ratio to pgbench single-row INSERT)
  pgbench INSERT               $pgbench_tps
    machine's busy CPU: $busy_pgbench us per insert
  POST reaction, 100 messages  $spread   $(ratio "$spread" "$pgbench_tps")
    CPU: $cpu_spread (the write and its projection)
    machine's busy CPU: $busy_spread us per reaction during the posts
  POST reaction, one message   $hot   $(ratio "$hot" "$pgbench_tps")   (hot/spread $(ratio "$hot" "$spread"))
  at half the maximum rate:    $half_spread
  projection lag at half the maximum rate: $lag_half
  peak RSS under the write load: API $api_rss MiB, worker $worker_rss MiB
client reads (random readers; the hot message on page 1 has $hot_reactions reactions; hello world again: $hello_client)
  GET /messages, anonymous                              $page1_anon   $(ratio "$page1_anon" "$hello_client")
  GET /messages?user_id=<reader>                        $page1_reader   $(ratio "$page1_reader" "$hello_client")   ($(ratio "$page1_reader" "$page1_anon") of anonymous)
  GET /messages, a token per reader (auth on)           $page1_token   $(ratio "$page1_token" "$hello_client")   ($(ratio "$page1_token" "$page1_reader") of user_id)
  GET /messages/{hot}?user_id=<reader> (PostgreSQL)     $message_reader   $(ratio "$message_reader" "$hello_client")
  the mix of mixed.js: pages, messages, posts           $mixed   $(ratio "$mixed" "$hello_client")
  at half the maximum rate, anonymous:  $half_anon
  at half the maximum rate, user_id:    $half_reader
  at half the maximum rate, token:      $half_token
  at half the maximum rate, the mix:    $half_mixed
  own reactions: $own_lookups
cache
  Redis memory: $cache_mem
live events (100 streams, 200 reactions/s)
  $sse
projection
  backlog of $backlog reactions (written at $backlog_req/s with no worker) folded in ${elapsed}s: $(ratio "$backlog" "$elapsed") events/s
  a backlog of $drain_from unprojected reactions, with posts going on at $drain_rps/s: $drained
visibility lag (POST acknowledged -> GET /messages/{id} shows it)
  idle:      $lag_idle
  $(echo "$lag_load" | head -1)
  $(echo "$lag_load" | tail -1)
REPORT
