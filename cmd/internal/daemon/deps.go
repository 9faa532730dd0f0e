package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/IBM/pgxpoolprometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"messageapi/postgres"
	"messageapi/redis"
)

// DepsConfig is what both programs need to reach PostgreSQL and Redis.
type DepsConfig struct {
	DatabaseURL  string
	DBMaxConns   int
	DBTimeout    time.Duration
	RedisURL     string
	RedisPrefix  string
	RedisTimeout time.Duration
}

// Deps are a program's connections, its metrics registry and the state of
// its schema. Opening them does not connect: a program starts while
// PostgreSQL or Redis is down, and its readiness says so.
type Deps struct {
	DB       *postgres.DB
	Redis    *redis.Client
	Registry *prometheus.Registry
	Schema   *Schema
}

// OpenDeps opens the connection pools and a registry holding the runtime,
// process and pool metrics. It fails only on invalid configuration.
func OpenDeps(cfg DepsConfig, log *slog.Logger) (*Deps, error) {
	redis.LogTo(log)
	db, err := postgres.Open(postgres.Config{URL: cfg.DatabaseURL, MaxConns: int32(cfg.DBMaxConns), QueryTimeout: cfg.DBTimeout})
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		pgxpoolprometheus.NewCollector(db.Pool(), map[string]string{"db": "postgres"}),
	)
	rc, err := redis.Open(redis.Config{
		URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Timeout: cfg.RedisTimeout, Registerer: reg, Log: log,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	return &Deps{DB: db, Redis: rc, Registry: reg, Schema: &Schema{db: db}}, nil
}

// Close closes the pools.
func (d *Deps) Close() {
	_ = d.Redis.Close()
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

// Schema migrates the database and remembers that it did.
type Schema struct {
	db       *postgres.DB
	migrated atomic.Bool
}

// Migrate runs the migrations, retrying while PostgreSQL is unreachable,
// until they succeed or ctx ends.
func (s *Schema) Migrate(ctx context.Context, log *slog.Logger) error {
	if err := Retry(ctx, log, "migrate schema", s.db.Migrate); err != nil {
		return err
	}
	s.migrated.Store(true)
	return nil
}

// Ready reports whether the schema is migrated.
func (s *Schema) Ready() bool { return s.migrated.Load() }

func (s *Schema) check(context.Context) error {
	if !s.Ready() {
		return errors.New("not migrated yet")
	}
	return nil
}
