#!/usr/bin/env bash
# Builds and runs the API and one worker in the foreground, against the
# PostgreSQL and Redis of DATABASE_URL and REDIS_URL (make run starts them
# first where needed). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/api ./cmd/api
go build -o bin/worker ./cmd/worker
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM
# Both programs read ADMIN_ADDR; the worker gets its own address as a flag,
# which wins over the environment.
worker_admin=${WORKER_ADMIN_ADDR:-localhost:6061}
bin/api "$@" & pids+=($!)
bin/worker -admin-addr "$worker_admin" & pids+=($!)
echo "run: API on ${ADDR:-localhost:8080} (admin ${ADMIN_ADDR:-localhost:6060}), worker admin on $worker_admin; Ctrl-C stops both" >&2
# Stop both when either exits, so a crash is not hidden behind the other.
wait -n || true
stop
