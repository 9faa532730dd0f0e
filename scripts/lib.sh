# shellcheck shell=bash
# Sourced by the scripts in scripts/ and loadtest/: the default settings and
# the URL helpers, so that every script finds PostgreSQL and Redis through the
# same variables and the same defaults as the programs.

: "${DATABASE_URL:=postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable}"
: "${TEST_DATABASE_URL:=postgres://message-api:message-api@localhost:5432/message-api-test?sslmode=disable}"
: "${REDIS_URL:=redis://localhost:6379/0}"
: "${TEST_REDIS_URL:=redis://localhost:6379/15}"

# url_part URL field [default-port]: prints the user, password, host, port
# or db (the path) of a URL. An IPv6 host may be written in brackets.
url_part() {
	local url=$1 field=$2 rest userinfo hostport host port
	rest=${url#*://}
	rest=${rest%%\?*}
	userinfo=""
	if [[ $rest == *@* ]]; then userinfo=${rest%%@*}; rest=${rest#*@}; fi
	hostport=${rest%%/*}
	if [[ $hostport == \[* ]]; then
		host=${hostport#\[}; host=${host%%\]*}
		port=${hostport#*\]}; port=${port#:}
	else
		host=${hostport%%:*}
		port=""; [[ $hostport == *:* ]] && port=${hostport##*:}
	fi
	case $field in
	user) local u=${userinfo%%:*}; printf '%s' "${u:-postgres}" ;;
	password) [[ $userinfo == *:* ]] && printf '%s' "${userinfo#*:}" ;;
	host) printf '%s' "${host:-localhost}" ;;
	port) printf '%s' "${port:-${3:-}}" ;;
	db) [[ $rest == */* ]] && printf '%s' "${rest#*/}" ;;
	esac
	return 0
}

# url_with_db URL DB: the same URL (scheme, credentials, host, port and
# query) with another database: a PostgreSQL database name or a Redis
# database number.
url_with_db() {
	local url=$1 db=$2 scheme rest query=""
	scheme=${url%%://*}
	rest=${url#*://}
	if [[ $rest == *\?* ]]; then query="?${rest#*\?}"; fi
	rest=${rest%%\?*}
	rest=${rest%%/*}
	printf '%s://%s/%s%s' "$scheme" "$rest" "$db" "$query"
}

# url_with_param URL KEY VALUE: the URL with the query parameter KEY set to
# VALUE (replacing any it had).
url_with_param() {
	local url=$1 key=$2 value=$3 base query="" kept=() p
	base=${url%%\?*}
	[[ $url == *\?* ]] && query=${url#*\?}
	local IFS='&'
	for p in $query; do
		[[ -n $p && ${p%%=*} != "$key" ]] && kept+=("$p")
	done
	kept+=("$key=$value")
	printf '%s?%s' "$base" "${kept[*]}"
}

# admin_database_url URL: the URL to create roles and databases on the
# server of URL with: ADMIN_DATABASE_URL, or the postgres superuser there.
admin_database_url() {
	local url=$1
	if [[ -n ${ADMIN_DATABASE_URL:-} ]]; then
		printf '%s' "$ADMIN_DATABASE_URL"
		return
	fi
	local host port
	host=$(url_part "$url" host) port=$(url_part "$url" port 5432)
	[[ $host == *:* ]] && host="[$host]"
	printf 'postgres://postgres@%s:%s/postgres' "$host" "$port"
}

# is_local_host HOST: true for the names and addresses of this machine
# that a server started here can listen on.
is_local_host() {
	case $1 in
	localhost | 127.* | ::1) return 0 ;;
	*) return 1 ;;
	esac
}

# reachable HOST PORT: true when something accepts TCP connections there.
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
