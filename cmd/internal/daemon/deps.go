package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"messageapi"
	"messageapi/internal/retry"
	"messageapi/postgres"
	"messageapi/redis"
)

// Deps are a program's connections, its metrics registry and the state of
// its schema. Opening them does not connect: a program starts while
// PostgreSQL or Redis is down, and its readiness says so.
type Deps struct {
	DB       *postgres.DB
	Redis    *redis.Client
	Registry *prometheus.Registry
	Schema   *Schema
	cfg      Common
	log      *slog.Logger
	extra    []*postgres.DB
	// extraRedis are the clients of OpenRedis.
	extraRedis []*redis.Client
}

// OpenDeps opens the connection pools and a registry holding the runtime,
// process and pool metrics and messageapi_build_info. It fails only on
// invalid configuration.
func OpenDeps(cfg Common, log *slog.Logger) (*Deps, error) {
	redis.LogTo(log)
	db, err := openDB(cfg, cfg.DBMaxConns, cfg.SessionName)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		postgres.NewPoolCollector(db, prometheus.Labels{"db": "postgres"}),
		newBuildInfoGauge(ReadBuildInfo()),
	)
	rc, err := redis.Open(redis.Config{
		URL: cfg.RedisURL, ClusterAddrs: cfg.RedisCluster, Prefix: cfg.RedisPrefix, Timeout: cfg.RedisTimeout, Registerer: reg, Log: log,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	autovacuum := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_postgres_autovacuum_enabled",
		Help: "1 when PostgreSQL runs autovacuum, 0 when it is off (dead rows then accumulate without bound), as read at start.",
	})
	reg.MustRegister(autovacuum)
	return &Deps{DB: db, Redis: rc, Registry: reg, Schema: &Schema{db: db, autovacuum: autovacuum}, cfg: cfg, log: log}, nil
}

func openDB(cfg Common, maxConns int, name string) (*postgres.DB, error) {
	db, err := postgres.Open(postgres.Config{
		URL: cfg.DatabaseURL, MaxConns: int32(maxConns), QueryTimeout: cfg.DBTimeout,
		LockTimeout: cfg.DBLockTimeout, IdleInTxTimeout: cfg.DBIdleTx, Name: name,
	})
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	return db, nil
}

// OpenReadDB opens a second pool of maxConns connections, for reads only:
// a bulkhead, so that writes waiting on locks cannot take every connection
// from reads, nor reads from writes. It is closed with the others.
func (d *Deps) OpenReadDB(maxConns int) (*postgres.DB, error) {
	db, err := openDB(d.cfg, maxConns, d.cfg.SessionName+"-read")
	if err != nil {
		return nil, err
	}
	if err := d.Registry.Register(postgres.NewPoolCollector(db, prometheus.Labels{"db": "postgres-read"})); err != nil {
		db.Close()
		return nil, err
	}
	d.extra = append(d.extra, db)
	return db, nil
}

// OpenRedis opens a second Redis client of poolSize connections with a
// circuit breaker of its own: a bulkhead, so that work driven by clients
// (waits for its small pool included) cannot open the breaker that guards
// the caches. Its metrics are not registered. It is closed with the
// others.
func (d *Deps) OpenRedis(name string, poolSize int) (*redis.Client, error) {
	rc, err := redis.Open(redis.Config{
		URL: d.cfg.RedisURL, ClusterAddrs: d.cfg.RedisCluster, Prefix: d.cfg.RedisPrefix, Timeout: d.cfg.RedisTimeout,
		PoolSize: poolSize, Log: d.log, Name: name,
	})
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	d.extraRedis = append(d.extraRedis, rc)
	return rc, nil
}

// Close closes the pools.
func (d *Deps) Close() {
	_ = d.Redis.Close()
	for _, rc := range d.extraRedis {
		_ = rc.Close()
	}
	for _, db := range d.extra {
		db.Close()
	}
	d.DB.Close()
}

// AdminServer returns the admin server: ready when PostgreSQL and Redis
// answer and the schema is migrated.
func (d *Deps) AdminServer(log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: AdminHandler(d.Registry, log,
			Check{Name: "postgres", Func: d.DB.Ping},
			Check{Name: "redis", Func: d.Redis.Ping},
			Check{Name: "schema", Func: d.Schema.check},
		),
		ReadHeaderTimeout: 5 * time.Second,
	}
}

// Schema migrates the database and remembers that it did. Once migrated,
// it checks that the server runs autovacuum, and says so in a gauge and,
// when it does not, in a warning.
type Schema struct {
	db         *postgres.DB
	migrated   atomic.Bool
	autovacuum prometheus.Gauge
}

// Migrate runs the migrations, retrying while PostgreSQL is unavailable,
// until they succeed or ctx ends. Any other failure (a missing privilege,
// a broken migration) is returned at once: retrying would not help.
func (s *Schema) Migrate(ctx context.Context, log *slog.Logger) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := s.db.Migrate(ctx)
		if err != nil && messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retry.Policy(100*time.Millisecond, 5*time.Second)), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
		log.Warn("migrate schema failed; retrying", "retry_in", wait.Round(time.Millisecond).String(), "err", err)
	}))
	if err != nil {
		return err
	}
	s.migrated.Store(true)
	s.checkAutovacuum(ctx, log)
	return nil
}

// checkAutovacuum reads the server's autovacuum setting into the gauge,
// and warns when it is off.
func (s *Schema) checkAutovacuum(ctx context.Context, log *slog.Logger) {
	on, err := s.db.Autovacuum(ctx)
	switch {
	case err != nil:
		log.Warn("could not read the server's autovacuum setting", "err", err)
		return
	case !on:
		log.Warn("PostgreSQL runs with autovacuum off: dead rows of reactions, reaction_changes and message_views will not be reclaimed, and tables and indexes grow without bound; turn it on (docs/operations.md)")
	}
	if s.autovacuum != nil {
		v := 0.0
		if on {
			v = 1
		}
		s.autovacuum.Set(v)
	}
}

// Ready reports whether the schema is migrated.
func (s *Schema) Ready() bool { return s.migrated.Load() }

func (s *Schema) check(context.Context) error {
	if !s.Ready() {
		return errors.New("not migrated yet")
	}
	return nil
}

// Begin does what both programs do before their own work, given their
// parsed settings: it answers -h and the healthcheck subcommand, and
// otherwise opens the logger, naming the service, and the dependencies.
// Deps is nil when the program has nothing more to do; err is then its
// result.
func Begin(ctx context.Context, cfg Common, sub string, parseErr error, service string, stdout io.Writer) (*slog.Logger, *Deps, error) {
	switch {
	case errors.Is(parseErr, flag.ErrHelp):
		return nil, nil, nil
	case parseErr != nil:
		return nil, nil, parseErr
	case sub == "healthcheck":
		return nil, nil, HealthCheck(ctx, cfg.AdminAddr)
	}
	log, err := NewLogger(stdout, cfg.LogLevel, service)
	if err != nil {
		return nil, nil, err
	}
	deps, err := OpenDeps(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return log, deps, nil
}

// MigrateOrStop runs the migrations for a serving program: it returns nil
// when ctx ends first (the program is stopping) and the error of a
// failure that retrying cannot fix, which stops the program.
func (s *Schema) MigrateOrStop(ctx context.Context, log *slog.Logger) error {
	if err := s.Migrate(ctx, log); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
