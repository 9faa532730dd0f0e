package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"messageapi/cmd/internal/daemon"
	"messageapi/postgres"
	"messageapi/projection"
	"messageapi/redis"
)

// run is the whole program; main only adds the signals. Tests call it to
// start the real program.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, sub, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := daemon.NewLogger(stdout, cfg.logLevel)
	if err != nil {
		return err
	}
	if sub == "healthcheck" {
		return daemon.HealthCheck(ctx, cfg.adminAddr)
	}
	deps, err := daemon.OpenDeps(daemon.DepsConfig{
		DatabaseURL: cfg.databaseURL, DBMaxConns: cfg.dbMaxConns, DBTimeout: cfg.dbTimeout,
		RedisURL: cfg.redisURL, RedisPrefix: cfg.redisPrefix, RedisTimeout: cfg.redisTimeout,
	}, log)
	if err != nil {
		return err
	}
	defer deps.Close()
	db, rc := deps.DB, deps.Redis
	projector := postgres.NewProjector(db)
	cache := redis.NewPageCache(rc, redis.PageCacheConfig{TTL: cfg.cacheTTL})

	if sub == "reconcile" {
		return reconcile(ctx, log, db, projector, cache, cfg.reconcileSize, stdout)
	}
	worker, err := projection.NewWorker(projector, redis.NewStream(rc, redis.StreamConfig{}), cache, log,
		projection.NewMetrics(deps.Registry), projection.Config{
			Group: cfg.group, Consumer: cfg.consumer, BatchSize: cfg.batchSize, Block: cfg.block,
			ClaimInterval: cfg.claimInterval, ClaimMinIdle: cfg.claimMinIdle, MaxDeliveries: int64(cfg.maxDeliveries),
			SweepInterval: cfg.sweepInterval, SweepMinAge: cfg.sweepMinAge,
		})
	if err != nil {
		return err
	}
	admin := deps.AdminServer(log)
	adminLn, err := daemon.Listen(log, "admin", cfg.adminAddr)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return daemon.Serve(gctx, admin, adminLn, cfg.shutdownGrace) })
	g.Go(func() error {
		if err := deps.Schema.Migrate(gctx, log); err != nil {
			return nil // shutting down
		}
		log.Info("schema migrated; projecting", "group", cfg.group, "consumer", cfg.consumer)
		return worker.Run(gctx)
	})
	err = g.Wait()
	log.Info("stopped")
	return err
}

// reconcile runs the reconcile subcommand: it checks every view against
// its reactions, rebuilds those that differ, and prints the report as one
// JSON line.
func reconcile(ctx context.Context, log *slog.Logger, db *postgres.DB, p *postgres.Projector, cache *redis.PageCache, pageSize int, stdout io.Writer) error {
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	start := time.Now()
	report, err := projection.Reconcile(ctx, p, cache, log, pageSize)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	log.Info("reconciled", "checked", report.Checked, "rebuilt", report.Rebuilt, "drifted", len(report.Drifted),
		"duration_ms", time.Since(start).Milliseconds())
	return json.NewEncoder(stdout).Encode(report)
}
