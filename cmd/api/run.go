package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	if err == nil && sub == "token" {
		token, err := mintToken(cfg.auth, cfg.token.subject, cfg.token.role == roleServer, cfg.token.ttl, time.Now())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	}
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

	if cfg.auth.enabled() {
		log.Info("authentication is on", "hs256_secret", len(cfg.auth.secret) > 0, "jwks_keys", len(cfg.auth.keys),
			"reads_need_token", cfg.auth.reads, "audience", cfg.auth.audience, "issuer", cfg.auth.issuer)
	} else {
		log.Warn("authentication is off: any client can act as any user; configure -auth-secret or -auth-jwks in production")
	}
	readDB, err := deps.OpenReadDB(cfg.dbReadConns)
	if err != nil {
		return err
	}
	app, err := newApp(cfg, deps.DB, readDB, deps.Redis, log, deps.Registry)
	if err != nil {
		return err
	}
	// Resumes from before the hub's window read the feed on connections
	// of their own, so a flood of them cannot take the caches' pool or
	// open their breaker.
	resumeRC, err := deps.OpenRedis("resume", cfg.sse.deepResumes+1)
	if err != nil {
		return err
	}
	app.server.hub.resumeFrom(redis.NewFeed(resumeRC, redis.FeedConfig{MaxLen: int64(cfg.FeedMaxLen)}))
	accessLevel, _ := daemon.ParseLevel(cfg.accessLogLevel) // validated with the config
	api := &http.Server{
		Handler: app.server.routes(routerConfig{
			log: log, metrics: newHTTPMetrics(deps.Registry), accessLevel: accessLevel,
			ready: deps.Schema.Ready, requestTimeout: cfg.requestTimeout,
			rateLimit: cfg.rateLimit, rateWindow: cfg.rateWindow, trustedProxies: cfg.trustedProxies,
			auth: newVerifier(cfg.auth), authReads: cfg.auth.reads, corsOrigins: cfg.corsOrigins,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.requestTimeout + 5*time.Second,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	api.RegisterOnShutdown(app.server.hub.close) // event streams would hold the shutdown up
	limits, err := connLimits(cfg, deps.Redis.PoolSize()+resumeRC.PoolSize())
	if err != nil {
		return err
	}
	log.Info("connection limits", "max", limits.Max, "per_client", limits.PerClient)
	apiLn, err := daemon.Listen(log, "api", cfg.addr)
	if err != nil {
		return err
	}
	if apiLn, err = daemon.LimitConns(apiLn, api, limits, deps.Registry); err != nil {
		return err
	}
	adminLn, err := daemon.Listen(log, "admin", cfg.AdminAddr)
	if err != nil {
		apiLn.Close()
		return err
	}

	// The servers come last, so they stop first: what their requests use
	// (the caches, the committers of reaction writes, the publishers that
	// take their events) stops after the last request has had its answer,
	// and then drains its queue.
	components := append(app.background(cfg.ShutdownGrace),
		daemon.Component{Name: "migrate", Run: func(ctx context.Context) error {
			// Serve at once; while PostgreSQL is down the API answers 503
			// and /readyz says why, until migration succeeds.
			if err := deps.Schema.MigrateOrStop(ctx, log); err != nil || ctx.Err() != nil {
				return err
			}
			log.Info("schema migrated; ready")
			return nil
		}},
		daemon.Component{Name: "admin server", Run: func(ctx context.Context) error {
			return daemon.Serve(ctx, deps.AdminServer(log), adminLn, cfg.ShutdownGrace)
		}},
		daemon.Component{Name: "api server", Run: func(ctx context.Context) error {
			return daemon.Serve(ctx, api, apiLn, cfg.ShutdownGrace)
		}},
	)
	err = daemon.RunComponents(ctx, components)
	log.Info("stopped")
	return err
}

// connLimits returns the limits of client connections: -max-conns, or as
// many as the open-file limit leaves once the process's own connections
// (both PostgreSQL pools, the Redis pool, the admin server) and files
// have theirs, so that a flood of clients cannot starve the pools.
func connLimits(cfg config, redisConns int) (daemon.ConnLimits, error) {
	limits := daemon.ConnLimits{Max: cfg.maxConns, PerClient: cfg.maxConnsPerClient, Exempt: cfg.trustedProxies}
	if limits.Max > 0 {
		return limits, nil
	}
	files, err := daemon.DescriptorLimit()
	if err != nil {
		return limits, err
	}
	reserved := cfg.DBMaxConns + cfg.dbReadConns + redisConns + 64
	if limits.Max = files - reserved; limits.Max < 16 {
		return limits, fmt.Errorf("the open-file limit (%d) leaves no room for clients beside the %d descriptors the process keeps for itself; raise it (ulimit -n) or set -max-conns", files, reserved)
	}
	return limits, nil
}

// app is the API's use cases wired on its dependencies, with the
// background work they need.
type app struct {
	server    *server
	cache     *redis.PageCache
	near      *redis.NearCache // nil when off
	publisher *redis.Publisher
	feed      *redis.Feed
	writes    *postgres.GroupCommitStore
	own       *redis.OwnReactions // nil when off
}

// background is the app's background work, in the order it depends on
// itself (see daemon.RunComponents): every component the use cases need
// to run, so that no program or test can leave one out.
func (a *app) background(grace time.Duration) []daemon.Component {
	// The publishers drain their queues together, within one grace.
	drains := []func(context.Context, time.Duration){a.publisher.Run, a.feed.Run}
	if a.own != nil {
		drains = append(drains, a.own.Run)
	}
	cs := []daemon.Component{
		daemon.Background("reaction writes", a.writes.Run),
		daemon.Background("publishers", func(ctx context.Context) {
			var wg sync.WaitGroup
			for _, run := range drains {
				wg.Go(func() { run(ctx, grace) })
			}
			wg.Wait()
		}),
		daemon.Background("page cache", a.cache.Run),
	}
	if a.near != nil {
		cs = append(cs, daemon.Background("near cache", a.near.Run))
	}
	return append(cs, daemon.Background("live events", a.server.hub.run))
}

// newApp wires the use cases: the commands on the write pool db, the
// queries on the read pool readDB.
func newApp(cfg config, db, readDB *postgres.DB, rc *redis.Client, log *slog.Logger, reg prometheus.Registerer) (*app, error) {
	document, err := newAPIDocument()
	if err != nil {
		return nil, err
	}
	messages, readMessages := postgres.NewMessageStore(db), postgres.NewMessageStore(readDB)
	// Reaction writes share transactions (group commit); reads take the
	// read pool.
	reactions := postgres.NewGroupCommitStore(db, postgres.GroupCommitConfig{MaxBatch: cfg.writeBatch, Committers: cfg.writeCommitters},
		postgres.NewGroupCommitMetrics(reg), log)
	readReactions := postgres.NewReactionStore(readDB)
	cache := redis.NewPageCache(rc, redis.PageCacheConfig{Pages: cfg.cachePages, TTL: cfg.CacheTTL})
	// Pages are read through the process's near cache when it is on.
	var pages interface {
		query.PageCache
		command.MessageCache
	} = cache
	var near *redis.NearCache
	// Readers' own reactions come from the process's copies of the
	// messages they read, beside the near cache, when both are on.
	var own *redis.OwnReactions // nil when off
	ownReader := query.OwnReactionReader(readReactions)
	if cfg.nearCacheMaxAge > 0 {
		near = redis.NewNearCache(cache, redis.NearCacheConfig{MaxAge: cfg.nearCacheMaxAge})
		pages = near
		if cfg.ownReactions > 0 {
			own = redis.NewOwnReactions(near, readReactions, redis.OwnReactionsConfig{MaxReactions: cfg.ownReactions})
			ownReader = own
		}
	}
	publisher := redis.NewPublisher(redis.NewStream(rc, redis.StreamConfig{MaxLen: int64(cfg.streamMaxLen), Partitions: cfg.Partitions}), redis.PublisherConfig{})
	feed := redis.NewFeed(rc, redis.FeedConfig{MaxLen: int64(cfg.FeedMaxLen)})
	addReaction := command.NewAddReactionHandler(reactions, publisher, log, command.AddReactionConfig{MaxTypes: cmp.Or(cfg.maxReactionTypes, -1)})
	removeReaction := command.NewRemoveReactionHandler(reactions, publisher, log)
	if own != nil {
		addReaction.ForgetIn(own)
		removeReaction.ForgetIn(own)
	}
	hubCfg := cfg.sse
	hubCfg.writeTimeout = cfg.requestTimeout
	return &app{
		server: &server{
			createMessage:  command.NewCreateMessageHandler(messages, pages, log).AnnounceTo(feed),
			addReaction:    addReaction,
			removeReaction: removeReaction,
			listMessages:   query.NewListMessagesHandler(readMessages, ownReader, pages, query.ListMessagesConfig{HeavyReads: cfg.heavyReads}),
			getMessage:     query.NewGetMessageHandler(readMessages, ownReader),
			listReactions:  query.NewListReactionsHandler(readReactions),
			hub:            newHub(feed, log, newSSEMetrics(reg), hubCfg),
			document:       document,
		},
		cache:     cache,
		near:      near,
		publisher: publisher,
		feed:      feed,
		writes:    reactions,
		own:       own,
	}, nil
}
