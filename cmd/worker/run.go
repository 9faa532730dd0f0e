package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"messageapi/cmd/internal/daemon"
	"messageapi/postgres"
	"messageapi/projection"
	"messageapi/redis/feed"
	"messageapi/redis/pagecache"
	"messageapi/redis/stream"
)

// run is the whole program; main only adds the signals.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, sub, err := parseConfig(args, getenv, stdout)
	log, deps, err := daemon.Begin(ctx, cfg.Common, sub, err, "worker", stdout)
	if deps == nil {
		return err
	}
	defer deps.Close()
	projector := postgres.NewProjector(deps.DB)
	cache := pagecache.New(deps.Redis, pagecache.Config{TTL: cfg.CacheTTL})
	if sub == "reconcile" {
		return reconcile(ctx, log, deps.DB, projector, cache, cfg.reconcileSize, stdout)
	}
	reactionStream := stream.New(deps.Redis, stream.Config{Partitions: cfg.Partitions})
	events := feed.New(deps.Redis, feed.Config{MaxLen: int64(cfg.FeedMaxLen)})
	d := projection.Deps{Store: projector, Cache: cache, Feed: events, Log: log, Metrics: projection.NewMetrics(deps.Registry)}
	for i := range reactionStream.Partitions() {
		d.Partitions = append(d.Partitions, reactionStream.Consumer(i, cfg.projection.Group, cfg.projection.Consumer))
	}
	if cfg.leases {
		d.Leases = reactionStream.Leases(cfg.projection.Consumer)
	}
	worker, err := projection.NewWorker(d, cfg.projection)
	if err != nil {
		return err
	}
	adminLn, err := daemon.Listen(log, "admin", cfg.AdminAddr)
	if err != nil {
		return err
	}
	// The projection stops first, so its grace is not spent waiting for
	// the admin server's.
	components := []daemon.Component{
		daemon.Background("page cache", cache.Run), // repairs the pages after a failed refresh
		{Name: "admin server", Run: func(ctx context.Context) error {
			return daemon.Serve(ctx, deps.AdminServer(log), adminLn, cfg.ShutdownGrace)
		}},
		{Name: "projection", Run: func(ctx context.Context) error {
			if err := deps.Schema.MigrateOrStop(ctx, log); err != nil || ctx.Err() != nil {
				return err
			}
			log.Info("schema migrated; projecting", "group", cfg.projection.Group, "consumer", cfg.projection.Consumer)
			return worker.Run(ctx)
		}},
	}
	err = daemon.Wait(ctx, cfg.ShutdownGrace, func() error { return daemon.RunComponents(ctx, components) })
	log.Info("stopped")
	return err
}

// reconcile runs the reconcile subcommand: it checks every view against
// its reactions, rebuilds those that differ, and prints the report as one
// JSON line.
func reconcile(ctx context.Context, log *slog.Logger, db *postgres.DB, p *postgres.Projector, cache *pagecache.Cache, pageSize int, stdout io.Writer) error {
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
