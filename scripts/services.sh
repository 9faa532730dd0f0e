#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the service and its tests are
# configured for are reachable, with the role and databases they need.
#
#   scripts/services.sh up     check, and start local servers where missing
#   scripts/services.sh down   stop the local servers this script started
#
# Where a configured server is not reachable, it starts one: with Docker
# Compose where a Docker engine runs, otherwise from the machine's own
# postgres and redis-server binaries, with data under .local/ in the project.
# With CI=true it never starts anything: a missing service is an error.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.local"

DATABASE_URL=${DATABASE_URL:-postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable}
TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://message-api:message-api@localhost:5432/message-api-test?sslmode=disable}
REDIS_URL=${REDIS_URL:-redis://localhost:6379/0}
TEST_REDIS_URL=${TEST_REDIS_URL:-redis://localhost:6379/15}

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

# url_part URL field: prints user, password, host, port or db of a URL.
url_part() {
	local url=$1 field=$2 rest userinfo hostport
	rest=${url#*://}
	rest=${rest%%\?*}
	userinfo=""
	if [[ $rest == *@* ]]; then userinfo=${rest%%@*}; rest=${rest#*@}; fi
	hostport=${rest%%/*}
	case $field in
	user) local u=${userinfo%%:*}; printf '%s' "${u:-postgres}" ;;
	password) [[ $userinfo == *:* ]] && printf '%s' "${userinfo#*:}" ;;
	host) local h=${hostport%%:*}; printf '%s' "${h:-localhost}" ;;
	port)
		if [[ $hostport == *:* ]]; then printf '%s' "${hostport##*:}"; else printf '%s' "$3"; fi ;;
	db) [[ $rest == */* ]] && printf '%s' "${rest#*/}" ;;
	esac
}

reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

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
# root, so as root it runs as the postgres user that the OS package creates.
as_pg_owner() {
	if [[ $(id -u) == 0 ]]; then
		id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run the server as"
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start_postgres() {
	local host=$1 port=$2
	if docker_engine; then
		log "starting PostgreSQL with docker compose"
		docker compose up -d --wait postgres
		return
	fi
	local initdb pg_ctl
	if ! initdb=$(pg_bin initdb) || ! pg_ctl=$(pg_bin pg_ctl); then
		die "PostgreSQL is not reachable on $host:$port and neither Docker nor the postgres binaries are here; install them with: sudo apt-get install -y postgresql"
	fi
	local data="$state/postgres"
	mkdir -p "$state"
	if [[ ! -s $data/PG_VERSION ]]; then
		log "creating a PostgreSQL cluster in $data"
		mkdir -p "$data"
		[[ $(id -u) == 0 ]] && chown postgres "$state" "$data"
		as_pg_owner "$initdb" -D "$data" -U postgres --auth=trust >/dev/null
	fi
	log "starting PostgreSQL from $data on $host:$port"
	as_pg_owner "$pg_ctl" -D "$data" -l "$data/server.log" -w \
		-o "-p $port -c listen_addresses=$host -k $data" start >/dev/null
}

start_redis() {
	local host=$1 port=$2
	if docker_engine; then
		log "starting Redis with docker compose"
		docker compose up -d --wait redis
		return
	fi
	command -v redis-server >/dev/null ||
		die "Redis is not reachable on $host:$port and neither Docker nor redis-server is here; install it with: sudo apt-get install -y redis-server"
	mkdir -p "$state/redis"
	log "starting Redis in $state/redis on $host:$port"
	redis-server --daemonize yes --bind "$host" --port "$port" --dir "$state/redis" \
		--save "" --appendonly no --pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log"
}

# ensure_database makes the role and database of a URL exist, connecting
# as the server's superuser (ADMIN_DATABASE_URL) where that is allowed.
ensure_database() {
	local url=$1 host port user password db admin
	host=$(url_part "$url" host) port=$(url_part "$url" port 5432)
	user=$(url_part "$url" user) password=$(url_part "$url" password) db=$(url_part "$url" db)
	command -v psql >/dev/null || { log "psql not found: not checking role $user and database $db"; return; }
	if psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then return; fi
	admin=${ADMIN_DATABASE_URL:-postgres://postgres@$host:$port/postgres}
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
	psql "$url" -Atqc 'select 1' >/dev/null 2>&1 && return
	die "cannot connect to database $db as $user on $host:$port; create them with:
  psql '$admin' -c \"create role \\\"$user\\\" login password '$password'\" -c 'create database \"$db\" owner \"$user\"'"
}

up() {
	local pg_host pg_port redis_host redis_port
	pg_host=$(url_part "$DATABASE_URL" host) pg_port=$(url_part "$DATABASE_URL" port 5432)
	redis_host=$(url_part "$REDIS_URL" host) redis_port=$(url_part "$REDIS_URL" port 6379)

	if ! reachable "$pg_host" "$pg_port"; then
		[[ ${CI:-} == true ]] && die "PostgreSQL is not reachable on $pg_host:$pg_port"
		start_postgres "$pg_host" "$pg_port"
		wait_for "$pg_host" "$pg_port" PostgreSQL
	fi
	if ! reachable "$redis_host" "$redis_port"; then
		[[ ${CI:-} == true ]] && die "Redis is not reachable on $redis_host:$redis_port"
		start_redis "$redis_host" "$redis_port"
		wait_for "$redis_host" "$redis_port" Redis
	fi
	ensure_database "$DATABASE_URL"
	ensure_database "$TEST_DATABASE_URL"
	local test_redis_host test_redis_port
	test_redis_host=$(url_part "$TEST_REDIS_URL" host) test_redis_port=$(url_part "$TEST_REDIS_URL" port 6379)
	reachable "$test_redis_host" "$test_redis_port" || die "the test Redis is not reachable on $test_redis_host:$test_redis_port"
	log "PostgreSQL on $pg_host:$pg_port and Redis on $redis_host:$redis_port are ready"
}

down() {
	if [[ -s $state/redis/redis.pid ]]; then
		kill "$(cat "$state/redis/redis.pid")" 2>/dev/null || true
		log "stopped the local Redis"
	fi
	if [[ -s $state/postgres/postmaster.pid ]]; then
		as_pg_owner "$(pg_bin pg_ctl)" -D "$state/postgres" -m fast stop >/dev/null
		log "stopped the local PostgreSQL"
	fi
}

case ${1:-up} in
up) up ;;
down) down ;;
*) die "usage: $0 up|down" ;;
esac
