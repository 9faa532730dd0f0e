package main

import (
	"io"
	"time"

	"messageapi/cmd/internal/daemon"
)

// config is the worker's configuration. Each field is a flag with an
// environment-variable fallback; flags win.
type config struct {
	adminAddr     string
	databaseURL   string
	redisURL      string
	redisPrefix   string
	logLevel      string
	dbMaxConns    int
	dbTimeout     time.Duration
	redisTimeout  time.Duration
	shutdownGrace time.Duration
}

const (
	defaultDatabaseURL = "postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable"
	defaultRedisURL    = "redis://localhost:6379/0"
)

// parseConfig reads the subcommand ("run" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "run"
	if len(args) > 0 && args[0] == "healthcheck" {
		sub, args = args[0], args[1:]
	}
	f := daemon.NewFlags("worker", getenv, output)
	adminAddr := f.String("admin-addr", "ADMIN_ADDR", "localhost:6061", "admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	databaseURL := f.String("database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL URL; a search_path parameter selects the schema")
	redisURL := f.String("redis-url", "REDIS_URL", defaultRedisURL, "Redis URL")
	redisPrefix := f.String("redis-prefix", "REDIS_PREFIX", "messageapi:", "prefix of every Redis key")
	logLevel := f.String("log-level", "LOG_LEVEL", "info", "log level: debug, info, warn or error")
	dbMaxConns := f.Int("db-max-conns", "DB_MAX_CONNS", 4, "maximum PostgreSQL connections")
	dbTimeout := f.Duration("db-timeout", "DB_TIMEOUT", 5*time.Second, "timeout of each PostgreSQL call")
	redisTimeout := f.Duration("redis-timeout", "REDIS_TIMEOUT", 2*time.Second, "timeout of each Redis call")
	shutdownGrace := f.Duration("shutdown-grace", "SHUTDOWN_GRACE", 10*time.Second, "how long shutdown waits for the batch in flight")
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	c := config{
		adminAddr: *adminAddr, databaseURL: *databaseURL, redisURL: *redisURL, redisPrefix: *redisPrefix,
		logLevel: *logLevel, dbMaxConns: *dbMaxConns, dbTimeout: *dbTimeout, redisTimeout: *redisTimeout,
		shutdownGrace: *shutdownGrace,
	}
	return c, sub, c.validate()
}

func (c config) validate() error {
	_, logErr := daemon.ParseLevel(c.logLevel)
	for _, err := range []error{
		daemon.Require(logErr == nil, "log-level", "use debug, info, warn or error"),
		daemon.Require(c.dbMaxConns >= 1 && c.dbMaxConns <= 1000, "db-max-conns", "must be from 1 to 1000"),
		daemon.Require(c.dbTimeout > 0, "db-timeout", "must be positive"),
		daemon.Require(c.redisTimeout > 0, "redis-timeout", "must be positive"),
		daemon.Require(c.shutdownGrace > 0, "shutdown-grace", "must be positive"),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
