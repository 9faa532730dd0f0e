package daemon

import (
	"net"
	"net/url"
	"strings"
	"time"

	"messageapi/redis/feed"
	"messageapi/redis/pagecache"
	"messageapi/redis/stream"
)

// Defaults both programs share. The URLs point at the services of
// docker-compose.yml, which listen on localhost.
const (
	DefaultDatabaseURL = "postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable"
	DefaultRedisURL    = "redis://localhost:6379/0"
	DefaultRedisPrefix = "messageapi:"
	DefaultGrace       = 10 * time.Second
)

// Common are the settings both programs have. The programs differ in some
// defaults, which they pass to DefineCommon.
type Common struct {
	AdminAddr     string
	DatabaseURL   string
	RedisURL      string
	RedisCluster  []string
	RedisPrefix   string
	LogLevel      string
	DBMaxConns    int
	DBTimeout     time.Duration
	DBLockTimeout time.Duration
	DBIdleTx      time.Duration
	RedisTimeout  time.Duration
	ShutdownGrace time.Duration
	CacheTTL      time.Duration
	// Partitions is how many partitions the reaction stream has; every
	// API and worker of a deployment must agree on it.
	Partitions int
	// FeedMaxLen caps the live feed, which both programs append to.
	FeedMaxLen int
	// SessionName is the application_name of the program's PostgreSQL
	// sessions; it is set by the program, not by a flag.
	SessionName string
}

// DefineCommon defines the shared settings on f, stored in c, with the
// program's defaults def (zero fields take the shared defaults).
func DefineCommon(f *Flags, c *Common, def Common) {
	f.String(&c.AdminAddr, "admin-addr", def.AdminAddr, "admin listen address: /healthz, /readyz, /metrics, /debug/pprof; keep it internal", "ADMIN_ADDR")
	f.String(&c.DatabaseURL, "database-url", DefaultDatabaseURL, "PostgreSQL URL; a search_path parameter selects the schema (created when missing)", "DATABASE_URL")
	f.String(&c.RedisURL, "redis-url", DefaultRedisURL, "Redis URL of a single server (its password also serves -redis-cluster-addrs)", "REDIS_URL")
	f.List(&c.RedisCluster, "redis-cluster-addrs", "comma-separated host:port seed addresses of a Redis Cluster, used instead of -redis-url", "REDIS_CLUSTER_ADDRS")
	f.Int(&c.Partitions, "stream-partitions", stream.DefaultPartitions, "partitions of the reaction stream, each on a hash tag of its own (so a Redis Cluster spreads them); the same in every API and worker", "STREAM_PARTITIONS")
	f.Int(&c.FeedMaxLen, "feed-max-len", feed.DefaultMaxLen, "approximate length the live-event feed is trimmed to: how far back a reconnecting client can resume", "FEED_MAX_LEN")
	f.String(&c.RedisPrefix, "redis-prefix", "", "prefix of every Redis key, so two schemas or databases never share keys; no { or }", "REDIS_PREFIX")
	f.ShowDefault("redis-prefix", "`"+DefaultRedisPrefix+"` for the default database and schema, else `"+DefaultRedisPrefix+"<database>:<schema>:`")
	f.String(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error", "LOG_LEVEL")
	f.Int(&c.DBMaxConns, "db-max-conns", def.DBMaxConns, "maximum PostgreSQL connections", "DB_MAX_CONNS")
	f.Duration(&c.DBTimeout, "db-timeout", def.DBTimeout, "timeout of each PostgreSQL call, including the wait for a connection", "DB_TIMEOUT")
	f.Duration(&c.DBLockTimeout, "db-lock-timeout", def.DBLockTimeout, "how long a PostgreSQL session waits for a row lock before the statement fails (server side)", "DB_LOCK_TIMEOUT")
	f.Duration(&c.DBIdleTx, "db-idle-tx-timeout", def.DBIdleTx, "how long a session may sit idle inside a transaction before PostgreSQL ends it, releasing its locks: a frozen or cut-off process cannot hold them longer", "DB_IDLE_TX_TIMEOUT")
	f.Duration(&c.RedisTimeout, "redis-timeout", def.RedisTimeout, "timeout of each Redis call", "REDIS_TIMEOUT")
	f.Duration(&c.ShutdownGrace, "shutdown-grace", DefaultGrace, "how long each step of a stop waits for work in flight (the API: requests, then queued appends; the worker: the batch being folded) before it goes on anyway", "SHUTDOWN_GRACE")
	f.Duration(&c.CacheTTL, "cache-ttl", pagecache.DefaultTTL, "lifetime of the cached page index; bounds staleness after an outage; keep the API's and the worker's equal", "CACHE_TTL")
}

// Validate checks the shared settings and derives the Redis prefix when
// none is set. Its error is one line that names the setting.
func (c *Common) Validate() error {
	_, logErr := ParseLevel(c.LogLevel)
	if c.RedisPrefix == "" {
		c.RedisPrefix = DerivePrefix(c.DatabaseURL)
	}
	return FirstError(
		Require(logErr == nil, "log-level", "use debug, info, warn or error"),
		Require(c.DBMaxConns >= 1 && c.DBMaxConns <= 1000, "db-max-conns", "must be from 1 to 1000"),
		Require(c.DBTimeout > 0, "db-timeout", "must be positive"),
		Require(c.DBLockTimeout >= 0, "db-lock-timeout", "must not be negative"),
		Require(c.DBIdleTx >= 0, "db-idle-tx-timeout", "must not be negative"),
		Require(c.RedisTimeout > 0, "redis-timeout", "must be positive"),
		Require(c.ShutdownGrace > 0, "shutdown-grace", "must be positive"),
		Require(c.CacheTTL >= time.Second, "cache-ttl", "must be at least 1s"),
		Require(c.Partitions >= 1 && c.Partitions <= stream.MaxPartitions, "stream-partitions", "must be from 1 to %d", stream.MaxPartitions),
		Require(c.FeedMaxLen >= 1000, "feed-max-len", "must be at least 1000"),
		Require(validAddrs(c.RedisCluster), "redis-cluster-addrs", "must be host:port addresses separated by commas"),
		Require(!strings.ContainsAny(c.RedisPrefix, "{}"), "redis-prefix", "must not contain { or }, which Redis Cluster reads as a hash tag"),
	)
}

func validAddrs(addrs []string) bool {
	for _, a := range addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return false
		}
	}
	return true
}

// DerivePrefix returns the Redis key prefix for a database URL:
// DefaultRedisPrefix for the default database and schema, and otherwise
// one that names the database and the schema, so that two schemas or
// databases on one Redis never read each other's cached pages or stream.
func DerivePrefix(databaseURL string) string {
	db, schema := "message-api", "public"
	if u, err := url.Parse(databaseURL); err == nil {
		if name := strings.TrimPrefix(u.Path, "/"); name != "" {
			db = name
		}
		if sp := u.Query().Get("search_path"); sp != "" {
			first, _, _ := strings.Cut(sp, ",")
			schema = strings.Trim(strings.TrimSpace(first), `"`)
		}
	}
	if db == "message-api" && schema == "public" {
		return DefaultRedisPrefix
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '{' || r == '}' || r == ':' || r < ' ' {
				return '_'
			}
			return r
		}, s)
	}
	return DefaultRedisPrefix + clean(db) + ":" + clean(schema) + ":"
}
