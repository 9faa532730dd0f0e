#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the service or its tests are
# configured for are reachable, with the role and database they need.
#
#   scripts/services.sh up run    for make run: DATABASE_URL and REDIS_URL
#   scripts/services.sh up test   for make test: TEST_DATABASE_URL and TEST_REDIS_URL
#   scripts/services.sh up        both
#   scripts/services.sh down      stop what up started
#
# Where a server of those URLs is not reachable and its address is on this
# machine, up starts one on that address: with Docker Compose where a Docker
# engine runs (publishing the URL's port, see docker-compose.yml), otherwise
# from the machine's own postgres and redis-server binaries. It records what
# it started in SERVICES_STATE_DIR (default .local/ in the project), and down
# stops exactly that. With CI=true it never starts anything: a missing
# service is an error.
#
# Local PostgreSQL data lives in SERVICES_STATE_DIR, except as root: the
# server then runs as the postgres user, who often cannot reach the project
# (a clone under /root), so the data goes to a private directory of that
# user under ${TMPDIR:-/tmp}, whose path is recorded in SERVICES_STATE_DIR.
# The data outlives down; delete the directory to start afresh.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
state=${SERVICES_STATE_DIR:-$root/.local}
mkdir_state() { mkdir -p "$state"; }

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

# started lists what this run started, for the report when set-up fails.
started=()
report_started() {
	local status=$?
	if ((status != 0 && ${#started[@]} > 0)); then
		local down="scripts/services.sh down"
		[[ -n ${SERVICES_STATE_DIR:-} ]] && down="SERVICES_STATE_DIR=$SERVICES_STATE_DIR $down"
		log "set-up failed after starting:"
		local s
		for s in "${started[@]}"; do log "  $s"; done
		log "they are still running; stop them with: $down"
	fi
	return "$status"
}
trap report_started EXIT

wait_for() {
	local host=$1 port=$2 what=$3
	for _ in $(seq 1 60); do
		reachable "$host" "$port" && return 0
		sleep 0.5
	done
	die "$what did not come up on $host:$port"
}

docker_engine() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

pg_bin() {
	local name=$1 dir
	if command -v "$name" >/dev/null; then command -v "$name"; return; fi
	for dir in /usr/lib/postgresql/*/bin; do
		[[ -x $dir/$name ]] && { echo "$dir/$name"; return; }
	done
	return 1
}

# as_pg_owner runs a PostgreSQL server command; the server refuses to run as
# root, so as root it runs as the postgres user that the OS package creates,
# from / since that user may not be allowed into the current directory.
as_pg_owner() {
	if [[ $(id -u) == 0 ]]; then
		id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run the server as"
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# bind_address HOST: the address that docker publishes a port on for HOST.
bind_address() {
	case $1 in
	localhost) printf '127.0.0.1' ;;
	::1) printf '[::1]' ;;
	*) printf '%s' "$1" ;;
	esac
}

# compose_up SERVICE HOST PORT starts one service of docker-compose.yml,
# published on HOST:PORT (the variables POSTGRES_BIND and POSTGRES_PORT, or
# REDIS_BIND and REDIS_PORT), and records it so that down stops it.
compose_up() {
	local svc=$1 host=$2 port=$3 bind var marker="$state/compose"
	bind=$(bind_address "$host")
	var=$(tr '[:lower:]' '[:upper:]' <<<"$svc")
	mkdir_state
	if [[ -s $marker ]]; then
		local other
		other=$(awk -v s="$svc" '$1 == s { print $2 " " $3 }' "$marker")
		if [[ -n $other && $other != "$bind $port" ]] && reachable "${other% *}" "${other#* }"; then
			die "docker compose already publishes $svc on ${other/ /:} for another URL, and it can publish only one; point both URLs at ${other/ /:}, or start a server on $host:$port yourself"
		fi
		awk -v s="$svc" '$1 != s' "$marker" >"$marker.new"
		mv "$marker.new" "$marker"
	fi
	printf '%s %s %s\n' "$svc" "$bind" "$port" >>"$marker"
	export "${var}_BIND=$bind" "${var}_PORT=$port"
	log "starting $svc with docker compose on $bind:$port"
	started+=("$svc in docker compose on $bind:$port")
	docker compose up -d --wait "$svc"
}

# new_pg_data prints a new, empty directory for a PostgreSQL cluster on PORT
# that the user who runs the server can use.
new_pg_data() {
	local port=$1 data
	if [[ $(id -u) != 0 ]]; then
		data="$state/postgres-$port"
		mkdir -p "$data"
		chmod 700 "$data"
		printf '%s' "$data"
		return
	fi
	local parent=${TMPDIR:-/tmp}
	data=$(mktemp -d "$parent/message-api-postgres-$port.XXXXXX") ||
		die "cannot create a directory for PostgreSQL data in $parent"
	chown postgres: "$data"
	if ! (cd / && runuser -u postgres -- test -w "$data" -a -x "$data"); then
		rmdir "$data"
		die "as root, the PostgreSQL server runs as the postgres user, and the postgres user cannot reach $parent (it or a directory above it is private); point TMPDIR at a directory that user can reach, e.g. TMPDIR=/tmp"
	fi
	printf '%s' "$data"
}

start_postgres() {
	local host=$1 port=$2
	if docker_engine; then
		compose_up postgres "$host" "$port"
		return
	fi
	local initdb pg_ctl
	if ! initdb=$(pg_bin initdb) || ! pg_ctl=$(pg_bin pg_ctl); then
		die "PostgreSQL is not reachable on $host:$port and neither Docker nor the postgres binaries are here; install them with: sudo apt-get install -y postgresql"
	fi
	mkdir_state
	local record="$state/postgres-$port.data" data="" out
	[[ -s $record ]] && data=$(<"$record")
	if [[ -z $data || ! -s $data/PG_VERSION ]]; then
		data=$(new_pg_data "$port")
		log "creating a PostgreSQL cluster in $data"
		if ! out=$(as_pg_owner "$initdb" -D "$data" -U postgres --auth=trust 2>&1); then
			printf '%s\n' "$out" >&2
			rm -rf "$data"
			die "initdb failed in $data"
		fi
		printf '%s\n' "$data" >"$record"
	fi
	log "starting PostgreSQL from $data on $host:$port"
	started+=("PostgreSQL on $host:$port, data in $data")
	as_pg_owner "$pg_ctl" -D "$data" -l "$data/server.log" -w \
		-o "-p $port -c listen_addresses=$host -k $data -c autovacuum=on" start >/dev/null ||
		die "PostgreSQL did not start; see $data/server.log"
}

start_redis() {
	local host=$1 port=$2
	if docker_engine; then
		compose_up redis "$host" "$port"
		return
	fi
	command -v redis-server >/dev/null ||
		die "Redis is not reachable on $host:$port and neither Docker nor redis-server is here; install it with: sudo apt-get install -y redis-server"
	local dir="$state/redis-$port" bind=$host
	[[ $host == localhost ]] && bind="127.0.0.1 -::1" # ::1 where there is one
	mkdir -p "$dir"
	log "starting Redis in $dir on $host:$port"
	started+=("Redis on $host:$port, in $dir")
	redis-server --daemonize yes --bind "$bind" --port "$port" --dir "$dir" \
		--save "" --appendonly no --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
}

# ensure_server KIND VAR: makes the server of the URL in variable VAR
# reachable, starting one where allowed.
ensure_server() {
	local kind=$1 var=$2 url host port name
	url=${!var}
	host=$(url_part "$url" host)
	case $kind in
	postgres) name=PostgreSQL port=$(url_part "$url" port 5432) ;;
	redis) name=Redis port=$(url_part "$url" port 6379) ;;
	esac
	reachable "$host" "$port" && return 0
	[[ ${CI:-} == true ]] && die "$name of $var is not reachable on $host:$port (with CI=true nothing is started)"
	is_local_host "$host" ||
		die "$name of $var is not reachable on $host:$port, which is not this machine, so nothing is started for it"
	"start_$kind" "$host" "$port"
	wait_for "$host" "$port" "$name"
}

# ensure_database makes the role and database of a URL exist, connecting
# as the server's superuser (ADMIN_DATABASE_URL) where that is allowed.
ensure_database() {
	local var=$1 url host port user password db admin err
	url=${!var}
	host=$(url_part "$url" host) port=$(url_part "$url" port 5432)
	user=$(url_part "$url" user) password=$(url_part "$url" password) db=$(url_part "$url" db)
	command -v psql >/dev/null || { log "psql not found (apt-get install -y postgresql-client): not checking role $user and database $db of $var"; return; }
	if psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then return; fi
	admin=$(admin_database_url "$url")
	local sql="do \$\$ begin
		if not exists (select from pg_roles where rolname = '$user') then
			create role \"$user\" login password '$password';
		end if; end \$\$;"
	if psql "$admin" -Atqc "$sql" >/dev/null 2>&1; then
		if ! psql "$admin" -Atqc "select 1 from pg_database where datname = '$db'" | grep -q 1; then
			log "creating database $db owned by $user"
			psql "$admin" -Atqc "create database \"$db\" owner \"$user\"" >/dev/null
		fi
	fi
	err=$(psql "$url" -Atqc 'select 1' 2>&1 >/dev/null) && return
	die "cannot connect to database $db of $var as $user on $host:$port: ${err:-no reason given}
  where the role or database is missing, create them with:
  psql '$admin' -c \"create role \\\"$user\\\" login password '$password'\" -c 'create database \"$db\" owner \"$user\"'"
}

up() {
	local dbs redises
	case ${1:-all} in
	run) dbs=(DATABASE_URL) redises=(REDIS_URL) ;;
	test) dbs=(TEST_DATABASE_URL) redises=(TEST_REDIS_URL) ;;
	all) dbs=(DATABASE_URL TEST_DATABASE_URL) redises=(REDIS_URL TEST_REDIS_URL) ;;
	*) die "usage: $0 up [run|test]" ;;
	esac
	local var ready=""
	for var in "${dbs[@]}"; do ensure_server postgres "$var"; done
	for var in "${redises[@]}"; do ensure_server redis "$var"; done
	for var in "${dbs[@]}"; do ensure_database "$var"; done
	for var in "${dbs[@]}"; do ready+=" $var ($(url_part "${!var}" host):$(url_part "${!var}" port 5432))"; done
	for var in "${redises[@]}"; do ready+=" $var ($(url_part "${!var}" host):$(url_part "${!var}" port 6379))"; done
	log "ready:$ready"
}

down() {
	local f data dir pid
	for f in "$state"/postgres-*.data "$state/postgres"; do
		if [[ $f == "$state/postgres" ]]; then data=$f; else [[ -s $f ]] || continue; data=$(<"$f"); fi
		[[ -s $data/postmaster.pid ]] || continue
		as_pg_owner "$(pg_bin pg_ctl)" -D "$data" -m fast stop >/dev/null
		log "stopped the local PostgreSQL (data in $data)"
	done
	for dir in "$state"/redis-* "$state/redis"; do
		[[ -s $dir/redis.pid ]] || continue
		pid=$(<"$dir/redis.pid")
		if kill "$pid" 2>/dev/null; then
			for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			log "stopped the local Redis in $dir"
		fi
		rm -f "$dir/redis.pid"
	done
	if [[ -s $state/compose ]]; then
		local services
		mapfile -t services < <(awk '{ print $1 }' "$state/compose")
		docker compose stop "${services[@]}" ||
			die "docker compose stop ${services[*]} failed; $state/compose still lists them"
		rm -f "$state/compose"
		log "stopped ${services[*]} in docker compose"
	fi
}

case ${1:-up} in
up) (($# <= 2)) || die "usage: $0 up [run|test]"; up "${2:-all}" ;;
down) down ;;
*) die "usage: $0 up [run|test] | down" ;;
esac
