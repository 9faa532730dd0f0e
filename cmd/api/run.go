package main

import (
	"context"
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

// run is the whole program; main only adds the signals. TestRunInProcess
// runs it on port 0.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, sub, err := parseConfig(args, getenv, stdout)
	log, deps, err := daemon.Begin(ctx, cfg.Common, sub, err, "api", stdout)
	if deps == nil {
		return err
	}
	defer deps.Close()
	if sub == "migrate" {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := deps.DB.Migrate(ctx); err != nil {
			return err
		}
		log.Info("schema migrated")
		return nil
	}

	app, err := newApp(cfg, deps.DB, deps.Redis, log)
	if err != nil {
		return err
	}
	accessLevel, _ := daemon.ParseLevel(cfg.accessLogLevel) // validated with the config
	api := &http.Server{
		Handler: app.server.routes(routerConfig{
			log: log, metrics: newHTTPMetrics(deps.Registry), accessLevel: accessLevel,
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
	apiLn, err := daemon.Listen(log, "api", cfg.addr)
	if err != nil {
		return err
	}
	adminLn, err := daemon.Listen(log, "admin", cfg.AdminAddr)
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
		app.publisher.Run(pubCtx, cfg.ShutdownGrace)
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Serve at once; while PostgreSQL is down the API answers 503 and
		// /readyz says why, until migration succeeds.
		if err := deps.Schema.MigrateOrStop(gctx, log); err != nil || gctx.Err() != nil {
			return err
		}
		log.Info("schema migrated; ready")
		return nil
	})
	g.Go(func() error { return daemon.Serve(gctx, api, apiLn, cfg.ShutdownGrace) })
	g.Go(func() error { return daemon.Serve(gctx, deps.AdminServer(log), adminLn, cfg.ShutdownGrace) })
	g.Go(func() error { app.cache.Run(gctx); return nil })
	err = g.Wait()
	stopPublisher()
	<-published
	log.Info("stopped")
	return err
}

// app is the API's use cases wired on its dependencies, with the
// background work they need.
type app struct {
	server    *server
	cache     *redis.PageCache
	publisher *redis.Publisher
}

func newApp(cfg config, db *postgres.DB, rc *redis.Client, log *slog.Logger) (*app, error) {
	document, err := newAPIDocument()
	if err != nil {
		return nil, err
	}
	messages := postgres.NewMessageStore(db)
	reactions := postgres.NewReactionStore(db)
	cache := redis.NewPageCache(rc, redis.PageCacheConfig{Pages: cfg.cachePages, TTL: cfg.CacheTTL})
	publisher := redis.NewPublisher(redis.NewStream(rc, redis.StreamConfig{MaxLen: int64(cfg.streamMaxLen)}), redis.PublisherConfig{})
	return &app{
		server: &server{
			createMessage:  command.NewCreateMessageHandler(messages, cache, log),
			addReaction:    command.NewAddReactionHandler(reactions, publisher, log),
			removeReaction: command.NewRemoveReactionHandler(reactions, publisher, log),
			listMessages:   query.NewListMessagesHandler(messages, cache),
			getMessage:     query.NewGetMessageHandler(messages),
			listReactions:  query.NewListReactionsHandler(reactions),
			document:       document,
		},
		cache:     cache,
		publisher: publisher,
	}, nil
}
