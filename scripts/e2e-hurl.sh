#!/usr/bin/env bash
# Runs e2e.hurl against freshly built api and worker programs on an empty
# database of their own, then stops them and drops what they wrote.
#
#   scripts/e2e-hurl.sh [hurl options]     (make e2e-hurl)
#
# It uses the test settings, like make test: a new schema in the database
# of TEST_DATABASE_URL and a new key prefix in the Redis of TEST_REDIS_URL
# (scripts/services.sh up test makes them reachable first). The programs
# listen on free ports of 127.0.0.1, which are passed to Hurl as the
# variables base and admin. Needs Hurl 5.0.0 or newer, go, psql, redis-cli
# and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

log() { printf 'e2e-hurl: %s\n' "$*" >&2; }
die() { printf 'e2e-hurl: %s\n' "$*" >&2; exit 1; }

hurl_min=5
command -v hurl >/dev/null ||
	die "hurl is not installed. e2e.hurl needs Hurl $hurl_min.0.0 or newer (Debian has no package for it): install the hurl .deb of a release from https://hurl.dev, or: cargo install --locked hurl, or: npm install -g @orangeopensource/hurl"
hurl_version=$(hurl --version | awk 'NR == 1 { print $2 }')
hurl_major=${hurl_version%%.*}
if ! [[ $hurl_major =~ ^[0-9]+$ ]] || ((hurl_major < hurl_min)); then
	die "hurl $hurl_version is too old: e2e.hurl needs Hurl $hurl_min.0.0 or newer (it writes durations with units, such as retry-interval: 100ms)"
fi
command -v go >/dev/null || die "go is missing: install Go 1.26 or newer"
need() { command -v "$1" >/dev/null || die "$1 is missing; install it with: sudo apt-get install -y $2"; }
need psql postgresql-client
need redis-cli redis-tools
need curl curl

./scripts/services.sh up test

suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
schema="hurl_$suffix"
prefix="hurl:$suffix:"
db_url=$(url_with_param "$TEST_DATABASE_URL" search_path "$schema")
work=$(mktemp -d)
pids=()
created=""

cleanup() {
	local status=$?
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	if ((status != 0)); then
		local f
		for f in "$work"/*.log; do
			[[ -s $f ]] || continue
			log "last lines of $(basename "$f"):"
			tail -n 20 "$f" >&2
		done
	fi
	if [[ -n $created ]]; then
		psql "$TEST_DATABASE_URL" -qc "drop schema if exists $schema cascade" >/dev/null 2>&1 ||
			log "could not drop schema $schema; drop it with: psql '$TEST_DATABASE_URL' -c 'drop schema $schema cascade'"
		# Keys start with the prefix, or with a hash tag that does.
		{ redis-cli -u "$TEST_REDIS_URL" --scan --pattern "$prefix*" &&
			redis-cli -u "$TEST_REDIS_URL" --scan --pattern "{$prefix*"; } |
			xargs -r redis-cli -u "$TEST_REDIS_URL" del >/dev/null ||
			log "could not delete the Redis keys under $prefix"
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building the programs"
go build -o "$work/api" ./cmd/api
go build -o "$work/worker" ./cmd/worker

log "schema $schema in database $(url_part "$TEST_DATABASE_URL" db), Redis key prefix $prefix"
psql "$TEST_DATABASE_URL" -qc "create schema $schema" >/dev/null
created=1

export DATABASE_URL=$db_url REDIS_URL=$TEST_REDIS_URL REDIS_PREFIX=$prefix
"$work/api" -addr 127.0.0.1:0 -admin-addr 127.0.0.1:0 >"$work/api.log" 2>&1 &
pids+=($!)
"$work/worker" -admin-addr 127.0.0.1:0 >"$work/worker.log" 2>&1 &
pids+=($!)

# listen_addr LOG SERVER: the address from the program's "listening" line.
listen_addr() {
	sed -n '/"msg":"listening"/{/"server":"'"$2"'"/s/.*"addr":"\([^"]*\)".*/\1/p;}' "$1" | head -n 1
}
api="" admin="" worker_admin=""
for _ in $(seq 1 300); do
	api=$(listen_addr "$work/api.log" api)
	admin=$(listen_addr "$work/api.log" admin)
	worker_admin=$(listen_addr "$work/worker.log" admin)
	[[ -n $api && -n $admin && -n $worker_admin ]] && break
	for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || die "a program exited before listening"; done
	sleep 0.1
done
[[ -n $api && -n $admin && -n $worker_admin ]] || die "the programs did not say where they listen"
ready() { curl -sf "http://$admin/readyz" >/dev/null && curl -sf "http://$worker_admin/readyz" >/dev/null; }
for _ in $(seq 1 300); do
	ready && break
	sleep 0.1
done
ready || die "the programs did not become ready"

log "API on $api (admin $admin), worker admin on $worker_admin"
hurl --test --jobs 1 --variable "base=http://$api" --variable "admin=http://$admin" "$@" e2e.hurl
