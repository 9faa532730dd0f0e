package main

import (
	"fmt"
	"io"
	"os"
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
	cacheTTL      time.Duration

	group         string
	consumer      string
	batchSize     int
	block         time.Duration
	claimInterval time.Duration
	claimMinIdle  time.Duration
	maxDeliveries int
	sweepInterval time.Duration
	sweepMinAge   time.Duration
	reconcileSize int
}

// Defaults point at the services of docker-compose.yml on localhost.
const (
	defaultDatabaseURL = "postgres://message-api:message-api@localhost:5432/message-api?sslmode=disable"
	defaultRedisURL    = "redis://localhost:6379/0"
)

// defaultConsumer names this process in the consumer group. It is stable
// across restarts of one container (same host name, pid 1), so a restarted
// worker finishes its own pending entries at once instead of waiting for a
// claim.
func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// parseConfig reads the subcommand ("run" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "run"
	if len(args) > 0 && (args[0] == "healthcheck" || args[0] == "reconcile") {
		sub, args = args[0], args[1:]
	}
	f := daemon.NewFlags("worker", getenv, output)
	adminAddr := f.String("admin-addr", "ADMIN_ADDR", "localhost:6061", "admin listen address: /healthz, /readyz, /metrics, /debug/pprof")
	databaseURL := f.String("database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL URL; a search_path parameter selects the schema")
	redisURL := f.String("redis-url", "REDIS_URL", defaultRedisURL, "Redis URL")
	redisPrefix := f.String("redis-prefix", "REDIS_PREFIX", "messageapi:", "prefix of every Redis key")
	logLevel := f.String("log-level", "LOG_LEVEL", "info", "log level: debug, info, warn or error")
	dbMaxConns := f.Int("db-max-conns", "DB_MAX_CONNS", 4, "maximum PostgreSQL connections")
	dbTimeout := f.Duration("db-timeout", "DB_TIMEOUT", 10*time.Second, "timeout of each PostgreSQL call (one fold is one call)")
	redisTimeout := f.Duration("redis-timeout", "REDIS_TIMEOUT", time.Second, "timeout of each Redis call")
	shutdownGrace := f.Duration("shutdown-grace", "SHUTDOWN_GRACE", 10*time.Second, "how long shutdown waits for the admin server")
	cacheTTL := f.Duration("cache-ttl", "CACHE_TTL", time.Minute, "lifetime of cached pages; keep it equal to the API's")
	group := f.String("group", "STREAM_GROUP", "projection", "consumer group of the reaction stream")
	consumer := f.String("consumer", "STREAM_CONSUMER", defaultConsumer(), "this worker's name in the consumer group; unique per running worker")
	batchSize := f.Int("batch-size", "BATCH_SIZE", 500, "stream entries per read, and so per fold transaction")
	block := f.Duration("block", "STREAM_BLOCK", time.Second, "how long a stream read waits for new entries")
	claimInterval := f.Duration("claim-interval", "CLAIM_INTERVAL", 5*time.Second, "how often to claim entries other consumers left pending")
	claimMinIdle := f.Duration("claim-min-idle", "CLAIM_MIN_IDLE", 30*time.Second, "how long an entry must be pending before another worker claims it")
	maxDeliveries := f.Int("max-deliveries", "MAX_DELIVERIES", 10, "deliveries after which an entry goes to the dead-letter stream (its change is still swept)")
	sweepInterval := f.Duration("sweep-interval", "SWEEP_INTERVAL", time.Second, "how often to look for changes the stream did not deliver")
	sweepMinAge := f.Duration("sweep-min-age", "SWEEP_MIN_AGE", 5*time.Second, "how old an unprojected change must be before the sweeper folds it")
	reconcileSize := f.Int("reconcile-page", "RECONCILE_PAGE", 500, "messages per page of the reconcile subcommand")
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	c := config{
		adminAddr: *adminAddr, databaseURL: *databaseURL, redisURL: *redisURL, redisPrefix: *redisPrefix,
		logLevel: *logLevel, dbMaxConns: *dbMaxConns, dbTimeout: *dbTimeout, redisTimeout: *redisTimeout,
		shutdownGrace: *shutdownGrace, cacheTTL: *cacheTTL,
		group: *group, consumer: *consumer, batchSize: *batchSize, block: *block,
		claimInterval: *claimInterval, claimMinIdle: *claimMinIdle, maxDeliveries: *maxDeliveries,
		sweepInterval: *sweepInterval, sweepMinAge: *sweepMinAge, reconcileSize: *reconcileSize,
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
		daemon.Require(c.cacheTTL >= time.Second, "cache-ttl", "must be at least 1s"),
		daemon.Require(c.group != "", "group", "must not be empty"),
		daemon.Require(c.consumer != "", "consumer", "must not be empty"),
		daemon.Require(c.batchSize >= 1 && c.batchSize <= 10_000, "batch-size", "must be from 1 to 10000"),
		daemon.Require(c.block >= 10*time.Millisecond, "block", "must be at least 10ms"),
		daemon.Require(c.claimInterval > 0, "claim-interval", "must be positive"),
		daemon.Require(c.claimMinIdle >= c.block, "claim-min-idle", "must be at least -block"),
		daemon.Require(c.maxDeliveries >= 1, "max-deliveries", "must be at least 1"),
		daemon.Require(c.sweepInterval > 0, "sweep-interval", "must be positive"),
		daemon.Require(c.sweepMinAge >= 0, "sweep-min-age", "must not be negative"),
		daemon.Require(c.reconcileSize >= 1 && c.reconcileSize <= 10_000, "reconcile-page", "must be from 1 to 10000"),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
