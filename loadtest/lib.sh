# Functions shared by loadtest/bench.sh and loadtest/scale.sh. Source it
# after setting work (a scratch directory).

rps() { awk '/^Requests\/sec/ {print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
half() { awk -v a="$1" 'BEGIN { printf "%d", a / 2 }'; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# CPU time (user + system) per process, for the CPU a write costs each
# server. cpu_snapshot API_PID WORKER_PID REDIS_PID records "kind pid" of
# the PostgreSQL processes (the postmaster PG_PID and its children when
# PG_PID is set, else every postgres process), the API, the worker and
# Redis; cpu_ticks prints "kind pid ticks" for them; cpu_per_write before
# after n prints, per process kind, microseconds of CPU per write between
# two snapshots. A process that started in between counts from zero; one
# that ended is lost (the pools keep their connections).
cpu_snapshot() {
	local p
	if [[ -n ${PG_PID:-} ]]; then
		for p in "$PG_PID" $(pgrep -P "$PG_PID"); do echo "pg $p"; done
	else
		for p in $(ps -C postgres -o pid=); do echo "pg $p"; done
	fi
	echo "api $1"; echo "worker $2"; echo "redis $3"
} >"$work/cpu-pids"
cpu_ticks() { # file of "kind pid" -> "kind pid ticks"
	while read -r kind p; do
		[ -r "/proc/$p/stat" ] && echo "$kind $p $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')"
	done <"$work/cpu-pids"
}
cpu_per_write() { # before after writes
	awk -v n="$3" -v hz="$(getconf CLK_TCK)" '
		FNR == NR { before[$2] = $3; next }
		{ used[$1] += $3 - before[$2] }
		END {
			us = 1e6 / hz / n
			printf "PostgreSQL %.0f, API %.0f, worker %.0f, Redis %.0f; total %.0f us of CPU per reaction",
				used["pg"] * us, used["api"] * us, used["worker"] * us, used["redis"] * us,
				(used["pg"] + used["api"] + used["worker"] + used["redis"]) * us
		}' "$1" "$2"
}
# The whole machine's busy CPU (every process, the load generator and
# the kernel included), from /proc/stat: busy_ticks prints the busy
# ticks so far; busy_per before after n prints microseconds per item.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
busy_per() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (b - a) * 1e6 / hz / n }'; }
