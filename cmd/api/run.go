package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"messageapi/cmd/internal/daemon"
	"messageapi/command"
	"messageapi/postgres"
	"messageapi/query"
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
	db, rc, reg := deps.DB, deps.Redis, deps.Registry
	if sub == "migrate" {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		log.Info("schema migrated")
		return nil
	}

	messages := postgres.NewMessageStore(db)
	reactions := postgres.NewReactionStore(db)
	cache := redis.NewPageCache(rc, redis.PageCacheConfig{Pages: cfg.cachePages, TTL: cfg.cacheTTL})
	publisher := redis.NewPublisher(redis.NewStream(rc, redis.StreamConfig{MaxLen: int64(cfg.streamMaxLen)}), redis.PublisherConfig{})
	s := &server{
		createMessage:  command.NewCreateMessageHandler(messages, cache, log),
		addReaction:    command.NewAddReactionHandler(reactions, publisher, log),
		removeReaction: command.NewRemoveReactionHandler(reactions, publisher, log),
		listMessages:   query.NewListMessagesHandler(messages, cache),
		getMessage:     query.NewGetMessageHandler(messages),
		listReactions:  query.NewListReactionsHandler(reactions),
	}
	accessLevel, _ := daemon.ParseLevel(cfg.accessLogLevel) // validated with the config
	api := &http.Server{
		Handler: s.routes(routerConfig{
			log: log, metrics: newHTTPMetrics(reg), accessLevel: accessLevel,
			ready: deps.Schema.Ready, requestTimeout: cfg.requestTimeout,
			rateLimit: cfg.rateLimit, rateWindow: cfg.rateWindow, trustedProxies: cfg.trustedProxies,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.requestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	admin := deps.AdminServer(log)
	apiLn, err := daemon.Listen(log, "api", cfg.addr)
	if err != nil {
		return err
	}
	adminLn, err := daemon.Listen(log, "admin", cfg.adminAddr)
	if err != nil {
		apiLn.Close()
		return err
	}

	// The publisher outlives the servers: it stops after the last request
	// has handed over its event, then drains the queue.
	pubCtx, stopPublisher := context.WithCancel(context.WithoutCancel(ctx))
	published := make(chan struct{})
	go func() {
		defer close(published)
		publisher.Run(pubCtx, cfg.shutdownGrace)
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Start serving at once; while PostgreSQL is down the API answers
		// 503 and /readyz says why, until migration succeeds.
		if err := deps.Schema.Migrate(gctx, log); err != nil {
			return nil // shutting down
		}
		log.Info("schema migrated; ready")
		return nil
	})
	g.Go(func() error { return daemon.Serve(gctx, api, apiLn, cfg.shutdownGrace) })
	g.Go(func() error { return daemon.Serve(gctx, admin, adminLn, cfg.shutdownGrace) })
	g.Go(func() error {
		// Drop a cache index that may lack a message as soon as Redis
		// answers again, not only when this process next reads a page.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				_ = cache.Heal(gctx)
			}
		}
	})
	err = g.Wait()
	stopPublisher()
	<-published
	log.Info("stopped")
	return err
}
