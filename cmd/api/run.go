package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"messageapi/auth"
	"messageapi/cmd/internal/daemon"
	"messageapi/httpapi"
	"messageapi/limits"
	"messageapi/redis/feed"
)

// run is the whole program; main only adds the signals. TestRunInProcess
// runs it on port 0.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, sub, err := parseConfig(args, getenv, stdout)
	if err == nil && sub == "token" {
		return printToken(cfg, stdout)
	}
	log, deps, err := daemon.Begin(ctx, cfg.Common, sub, err, "api", stdout)
	if deps == nil {
		return err
	}
	defer deps.Close()
	if sub == "migrate" {
		return migrate(ctx, deps, log)
	}
	return serveAPI(ctx, cfg, deps, log)
}

// printToken runs the token subcommand.
func printToken(cfg config, stdout io.Writer) error {
	token, err := auth.Mint(cfg.auth, cfg.token.subject, cfg.token.role == auth.RoleServer, cfg.token.ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// migrate runs the migrate subcommand.
func migrate(ctx context.Context, deps *daemon.Deps, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := deps.DB.Migrate(ctx); err != nil {
		return err
	}
	log.Info("schema migrated")
	return nil
}

// serveAPI runs the API until ctx ends.
func serveAPI(ctx context.Context, cfg config, deps *daemon.Deps, log *slog.Logger) error {
	logAuth(log, cfg.auth)
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
	resumeRC, err := deps.OpenRedis("resume", cfg.sse.DeepResumes+1)
	if err != nil {
		return err
	}
	app.hub.ResumeFrom(feed.New(resumeRC, feed.Config{MaxLen: int64(cfg.FeedMaxLen)}))
	api := newServer(cfg, app, deps, log)
	apiLn, adminLn, err := listen(cfg, api, deps, log, deps.Redis.PoolSize()+resumeRC.PoolSize())
	if err != nil {
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

func logAuth(log *slog.Logger, a auth.Config) {
	if !a.Enabled() {
		log.Warn("authentication is off: any client can act as any user; configure -auth-secret or -auth-jwks in production")
		return
	}
	log.Info("authentication is on", "hs256_secret", len(a.Secret) > 0, "jwks_keys", len(a.Keys),
		"reads_need_token", a.Reads, "audience", a.Audience, "issuer", a.Issuer)
}

// newServer returns the API's HTTP server.
func newServer(cfg config, app *app, deps *daemon.Deps, log *slog.Logger) *http.Server {
	accessLevel, _ := daemon.ParseLevel(cfg.accessLogLevel) // validated with the config
	api := &http.Server{
		Handler: app.server.Handler(httpapi.Config{
			Log: log, Metrics: httpapi.NewMetrics(deps.Registry), AccessLevel: accessLevel,
			Ready: deps.Schema.Ready, RequestTimeout: cfg.requestTimeout,
			RateLimit: cfg.rateLimit, RateWindow: cfg.rateWindow, TrustedProxies: cfg.trustedProxies,
			Auth: auth.NewVerifier(cfg.auth), AuthReads: cfg.auth.Reads, CORSOrigins: cfg.corsOrigins,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.requestTimeout + 5*time.Second,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	api.RegisterOnShutdown(app.hub.Close) // event streams would hold the shutdown up
	return api
}

// listen opens the API's listener, within the connection limits, and the
// admin server's.
func listen(cfg config, api *http.Server, deps *daemon.Deps, log *slog.Logger, redisConns int) (apiLn, adminLn net.Listener, err error) {
	lim, err := connLimits(cfg, redisConns)
	if err != nil {
		return nil, nil, err
	}
	log.Info("connection limits", "max", lim.Max, "per_client", lim.PerClient)
	if apiLn, err = daemon.Listen(log, "api", cfg.addr); err != nil {
		return nil, nil, err
	}
	if apiLn, err = limits.LimitConns(apiLn, api, lim, deps.Registry); err != nil {
		return nil, nil, err
	}
	if adminLn, err = daemon.Listen(log, "admin", cfg.AdminAddr); err != nil {
		apiLn.Close()
		return nil, nil, err
	}
	return apiLn, adminLn, nil
}

// connLimits returns the limits of client connections: -max-conns, or as
// many as the open-file limit leaves once the process's own connections
// (both PostgreSQL pools, the Redis pool, the admin server) and files
// have theirs, so that a flood of clients cannot starve the pools.
func connLimits(cfg config, redisConns int) (limits.ConnLimits, error) {
	lim := limits.ConnLimits{Max: cfg.maxConns, PerClient: cfg.maxConnsPerClient, Exempt: cfg.trustedProxies}
	if lim.Max > 0 {
		return lim, nil
	}
	files, err := limits.DescriptorLimit()
	if err != nil {
		return lim, err
	}
	reserved := cfg.DBMaxConns + cfg.dbReadConns + redisConns + 64
	if lim.Max = files - reserved; lim.Max < 16 {
		return lim, fmt.Errorf("the open-file limit (%d) leaves no room for clients beside the %d descriptors the process keeps for itself; raise it (ulimit -n) or set -max-conns", files, reserved)
	}
	return lim, nil
}
