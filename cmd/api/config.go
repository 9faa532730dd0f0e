package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"messageapi/cmd/internal/daemon"
)

// config is the API's configuration. Each field is a flag with an
// environment-variable fallback; flags win.
type config struct {
	addr           string
	adminAddr      string
	databaseURL    string
	redisURL       string
	redisPrefix    string
	logLevel       string
	accessLogLevel string
	dbMaxConns     int
	dbTimeout      time.Duration
	redisTimeout   time.Duration
	requestTimeout time.Duration
	shutdownGrace  time.Duration
	cachePages     int
	cacheTTL       time.Duration
	streamMaxLen   int
	rateLimit      int
	rateWindow     time.Duration
	trustedProxies []netip.Prefix
}

// Defaults that cmd/worker shares point at the services of
// docker-compose.yml, which listen on localhost.
const (
	defaultDatabaseURL = "postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable"
	defaultRedisURL    = "redis://localhost:6379/0"
)

// parseConfig reads the subcommand ("serve" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "serve"
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "healthcheck") {
		sub, args = args[0], args[1:]
	}
	f := daemon.NewFlags("api", getenv, output)
	addr := f.String("addr", "ADDR", "localhost:8080", "API listen address")
	adminAddr := f.String("admin-addr", "ADMIN_ADDR", "localhost:6060", "admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	databaseURL := f.String("database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL URL; a search_path parameter selects the schema")
	redisURL := f.String("redis-url", "REDIS_URL", defaultRedisURL, "Redis URL")
	redisPrefix := f.String("redis-prefix", "REDIS_PREFIX", "messageapi:", "prefix of every Redis key")
	logLevel := f.String("log-level", "LOG_LEVEL", "info", "log level: debug, info, warn or error")
	accessLogLevel := f.String("access-log-level", "ACCESS_LOG_LEVEL", "info", "level of the one access-log line per request; set it below -log-level to silence access logs")
	dbMaxConns := f.Int("db-max-conns", "DB_MAX_CONNS", 16, "maximum PostgreSQL connections")
	dbTimeout := f.Duration("db-timeout", "DB_TIMEOUT", 2*time.Second, "timeout of each PostgreSQL call, including the wait for a connection")
	redisTimeout := f.Duration("redis-timeout", "REDIS_TIMEOUT", 250*time.Millisecond, "timeout of each Redis call")
	requestTimeout := f.Duration("request-timeout", "REQUEST_TIMEOUT", 5*time.Second, "deadline of each API request")
	shutdownGrace := f.Duration("shutdown-grace", "SHUTDOWN_GRACE", 10*time.Second, "how long shutdown waits for requests in flight")
	cachePages := f.Int("cache-pages", "CACHE_PAGES", 5, "how many of the latest pages of 10 messages Redis caches")
	cacheTTL := f.Duration("cache-ttl", "CACHE_TTL", time.Minute, "lifetime of the cached page index; bounds staleness after an outage")
	streamMaxLen := f.Int("stream-max-len", "STREAM_MAX_LEN", 1_000_000, "approximate length the reaction stream is trimmed to (entries trimmed unread are folded by the sweeper)")
	rateLimit := f.Int("rate-limit", "RATE_LIMIT", 0, "requests each client may make per -rate-limit-window; 0 turns rate limiting off")
	rateWindow := f.Duration("rate-limit-window", "RATE_LIMIT_WINDOW", time.Second, "window of -rate-limit")
	trustedProxies := f.String("trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client; empty: the client is the TCP peer")
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	c := config{
		addr: *addr, adminAddr: *adminAddr, databaseURL: *databaseURL, redisURL: *redisURL,
		redisPrefix: *redisPrefix, logLevel: *logLevel, accessLogLevel: *accessLogLevel,
		dbMaxConns: *dbMaxConns, dbTimeout: *dbTimeout, redisTimeout: *redisTimeout,
		requestTimeout: *requestTimeout, shutdownGrace: *shutdownGrace,
		cachePages: *cachePages, cacheTTL: *cacheTTL, streamMaxLen: *streamMaxLen,
		rateLimit: *rateLimit, rateWindow: *rateWindow,
	}
	for _, cidr := range strings.Split(*trustedProxies, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			return config{}, "", fmt.Errorf("invalid -trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", cidr)
		}
		c.trustedProxies = append(c.trustedProxies, prefix)
	}
	return c, sub, c.validate()
}

func (c config) validate() error {
	_, logErr := daemon.ParseLevel(c.logLevel)
	_, accessErr := daemon.ParseLevel(c.accessLogLevel)
	for _, err := range []error{
		daemon.Require(logErr == nil, "log-level", "use debug, info, warn or error"),
		daemon.Require(accessErr == nil, "access-log-level", "use debug, info, warn or error"),
		daemon.Require(c.dbMaxConns >= 1 && c.dbMaxConns <= 1000, "db-max-conns", "must be from 1 to 1000"),
		daemon.Require(c.dbTimeout > 0, "db-timeout", "must be positive"),
		daemon.Require(c.redisTimeout > 0, "redis-timeout", "must be positive"),
		daemon.Require(c.requestTimeout > 0, "request-timeout", "must be positive"),
		daemon.Require(c.shutdownGrace > 0, "shutdown-grace", "must be positive"),
		daemon.Require(c.cachePages >= 1 && c.cachePages <= 1000, "cache-pages", "must be from 1 to 1000"),
		daemon.Require(c.cacheTTL >= time.Second, "cache-ttl", "must be at least 1s"),
		daemon.Require(c.streamMaxLen >= 1000, "stream-max-len", "must be at least 1000"),
		daemon.Require(c.rateLimit >= 0, "rate-limit", "must not be negative"),
		daemon.Require(c.rateWindow >= time.Millisecond, "rate-limit-window", "must be at least 1ms"),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
