#!/usr/bin/env bash
# Builds and runs the API and one worker in the foreground, against the
# PostgreSQL and Redis of DATABASE_URL and REDIS_URL (make run starts them
# first where needed). Arguments go to the API.
#
# When either program exits by itself, the other is stopped and the script
# exits with the status of the first one, or with the other's if that one
# fails to stop (so a failed start, such as a port already in use, fails
# make run). Ctrl-C or SIGTERM stops both; the script then exits 0 when both
# stopped as asked. (make, which sees a Ctrl-C too, still reports it as an
# interrupt, with status 130.)
#
# RUN_BIN_DIR names a directory that already holds api and worker programs
# to run instead of building them into bin/.
set -euo pipefail
if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
	echo "run: needs bash 5.1 or newer (for wait -n -p)" >&2
	exit 1
fi
cd "$(dirname "$0")/.."
bin=${RUN_BIN_DIR:-}
if [[ -z $bin ]]; then
	bin=bin
	mkdir -p bin
	go build -o bin/api ./cmd/api
	go build -o bin/worker ./cmd/worker
fi

stopping=""
trap 'stopping=1' INT TERM

# Both programs read ADMIN_ADDR; the worker gets its own address as a flag,
# which wins over the environment.
worker_admin=${WORKER_ADMIN_ADDR:-localhost:6061}
"$bin/api" "$@" &
api=$!
"$bin/worker" -admin-addr "$worker_admin" &
worker=$!
declare -A name=([$api]=api [$worker]=worker)
echo "run: API on ${ADDR:-localhost:8080} (admin ${ADMIN_ADDR:-localhost:6060}), worker admin on $worker_admin; Ctrl-C stops both" >&2

# reap PID: waits until PID has exited (a signal may interrupt wait) and
# returns its status.
reap() {
	local status
	while :; do
		status=0
		wait "$1" || status=$?
		kill -0 "$1" 2>/dev/null || return "$status"
	done
}

# stopped STATUS: true for the status of a program that stopped as asked:
# cleanly, or ended by the SIGINT or SIGTERM it was sent.
stopped() { (($1 == 0 || $1 == 130 || $1 == 143)); }

# Wait for the first program to exit, or for a signal.
first="" status=0
[[ -n $stopping ]] || wait -n -p first "$api" "$worker" || status=$?
first=${first:-} # wait unsets it when a signal interrupts it
if [[ -z $first ]]; then
	status=0 # a signal came and no program has exited yet
elif [[ -n $stopping ]] && stopped "$status"; then
	status=0
else
	echo "run: the ${name[$first]} exited with status $status; stopping the other program" >&2
fi
rest=()
for pid in "$api" "$worker"; do
	[[ $pid == "$first" ]] || rest+=("$pid")
done
kill -TERM "${rest[@]}" 2>/dev/null || true
for pid in "${rest[@]}"; do
	s=0
	reap "$pid" || s=$?
	if ! stopped "$s" && ((status == 0)); then
		echo "run: the ${name[$pid]} exited with status $s" >&2
		status=$s
	fi
done
exit "$status"
