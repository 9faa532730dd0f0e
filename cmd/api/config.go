package main

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"messageapi"
	"messageapi/auth"
	"messageapi/cmd/internal/daemon"
	"messageapi/postgres"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/stream"
	"messageapi/sse"
)

const usage = `Usage: api [subcommand] [flags]

Subcommands:
  (none)        serve the API (migrating the schema first)
  migrate       migrate the schema and exit
  healthcheck   exit 0 when the admin /healthz of a running API answers 200 (liveness, for container health checks)
  token         print a development token signed with the -auth-secret:
                api token -sub alice [-role server] [-ttl 1h]`

// config is the API's configuration. Each field is a flag with an
// environment-variable fallback; flags win.
type config struct {
	daemon.Common
	addr              string
	accessLogLevel    string
	dbReadConns       int
	heavyReads        int
	requestTimeout    time.Duration
	cachePages        int
	cacheChannelPages int
	cacheChannels     int
	cacheBytes        int
	nearCacheBytes    int
	streamMaxLen      int
	maxReactionTypes  int
	rateLimit         int
	rateWindow        time.Duration
	trustedProxies    []netip.Prefix
	maxConns          int
	maxConnsPerClient int
	idleTimeout       time.Duration
	auth              auth.Config
	corsOrigins       []string
	sse               sse.Config
	writeBatch        int
	nearCacheMaxAge   time.Duration
	ownReactions      int
	writeCommitters   int
	token             tokenRequest // the token subcommand only
}

// tokenRequest is what the token subcommand mints.
type tokenRequest struct {
	subject string
	role    string
	ttl     time.Duration
}

// parseConfig reads the subcommand ("serve" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "serve"
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "healthcheck" || args[0] == "token") {
		sub, args = args[0], args[1:]
	}
	var c config
	var raw rawSettings
	f := daemon.NewFlags("api", usage, getenv, output)
	defineFlags(f, &c, &raw, sub)
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	for _, cidr := range strings.Split(raw.proxies, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			return config{}, "", fmt.Errorf("invalid -trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", cidr)
		}
		c.trustedProxies = append(c.trustedProxies, prefix)
	}
	for _, origin := range strings.Split(raw.origins, ",") {
		if origin = strings.TrimSpace(origin); origin == "" {
			continue
		}
		if !validOrigin(origin) {
			return config{}, "", fmt.Errorf("invalid -cors-origins: %q is not an origin such as https://chat.example.com, https://*.example.com or *", origin)
		}
		c.corsOrigins = append(c.corsOrigins, origin)
	}
	if err := c.auth.Load(raw.secret, raw.secretFile, raw.jwks); err != nil {
		return config{}, "", err
	}
	if err := c.validate(); err != nil {
		return config{}, "", err
	}
	if sub == "token" {
		return c, sub, c.token.validate()
	}
	return c, sub, nil
}

// rawSettings are the settings that parseConfig turns into the config's
// own types.
type rawSettings struct {
	proxies, secret, secretFile, jwks, origins string
}

// defineFlags defines the API's flags on f, into c and raw; the token
// subcommand has flags of its own.
func defineFlags(f *daemon.Flags, c *config, raw *rawSettings, sub string) {
	daemon.DefineCommon(f, &c.Common, daemon.Common{
		AdminAddr: "localhost:6060", DBMaxConns: 16, DBTimeout: postgres.DefaultTimeout, RedisTimeout: redis.DefaultTimeout,
		DBLockTimeout: postgres.DefaultTimeout, DBIdleTx: 5 * time.Second,
	})
	c.SessionName = "messageapi-api"
	f.Int(&c.dbReadConns, "db-read-conns", 16, "PostgreSQL connections for reads, a pool apart from -db-max-conns (writes), so that one kind of traffic cannot starve the other", "DB_READ_CONNS")
	f.Int(&c.heavyReads, "heavy-reads", 4, "page reads served from PostgreSQL at once (pages outside the cache); more wait their turn, so deep pages cannot crowd out other reads", "HEAVY_READS")
	f.String(&c.addr, "addr", "localhost:8080", "API listen address", "ADDR")
	f.String(&c.accessLogLevel, "access-log-level", "info", "level of the one access-log line per request; set it below -log-level to silence access logs", "ACCESS_LOG_LEVEL")
	f.Duration(&c.requestTimeout, "request-timeout", 5*time.Second, "deadline of each API request", "REQUEST_TIMEOUT")
	f.Int(&c.cachePages, "cache-pages", pagecache.DefaultPages, "how many of the latest pages of 10 messages of the default channel Redis caches", "CACHE_PAGES")
	f.Int(&c.cacheChannelPages, "cache-channel-pages", pagecache.DefaultChannelPages, "how many of the latest pages of 10 messages Redis caches at most of each other channel: as deep as its pages were read", "CACHE_CHANNEL_PAGES")
	f.Int(&c.cacheBytes, "cache-bytes", pagecache.DefaultBytes, "bytes of Redis, about, that the cached pages of the channels besides the default one take together, whichever API processes read them; past it the pages of the channels read least recently are dropped", "CACHE_BYTES")
	f.ShowDefault("cache-bytes", "256 MiB (268435456)")
	f.Int(&c.cacheChannels, "cache-channels", 0, "deprecated, -cache-bytes bounds the cached channels: when positive, also caps how many channels besides the default one Redis caches at once, for every API process together; 0: no cap", "CACHE_CHANNELS")
	f.Int(&c.streamMaxLen, "stream-max-len", stream.DefaultMaxLen, "approximate length the reaction stream is trimmed to (entries trimmed unread are folded by the sweeper)", "STREAM_MAX_LEN")
	f.Int(&c.maxReactionTypes, "max-reaction-types", messageapi.DefaultMaxReactionTypes, "distinct reaction types one message may have; a post of one more gets 422; 0 turns the cap off", "MAX_REACTION_TYPES")
	f.Int(&c.maxConns, "max-conns", 0, "client connections held at once; at the limit the longest-idle keep-alive connection makes room, else 503; 0: as many as the open-file limit leaves beside the process's own pools", "MAX_CONNS")
	f.Int(&c.maxConnsPerClient, "max-conns-per-client", 256, "connections one client address may hold (429 beyond; trusted proxies are exempt); 0: no limit", "MAX_CONNS_PER_CLIENT")
	f.Duration(&c.idleTimeout, "idle-timeout", 30*time.Second, "how long an idle keep-alive connection is kept", "IDLE_TIMEOUT")
	f.Duration(&c.nearCacheMaxAge, "near-cache-max-age", pagecache.DefaultNearCacheMaxAge, "how long a cached page is served from the process's memory at most (pages are dropped at once when another process announces a change); 0 turns the near cache off", "NEAR_CACHE_MAX_AGE")
	f.Int(&c.nearCacheBytes, "near-cache-bytes", pagecache.DefaultNearCacheBytes, "bytes of pages, about, that the process's near cache holds at most; past it the pages read longest ago go first", "NEAR_CACHE_BYTES")
	f.ShowDefault("near-cache-bytes", "64 MiB (67108864)")
	f.Int(&c.ownReactions, "own-reactions-cache", pagecache.DefaultOwnReactions, "reactions the process holds in memory so that readers' own reactions (user_id) cost no PostgreSQL read: every reaction of the messages read most, for at most -near-cache-max-age; a message with more than half of them is read from PostgreSQL; 0 turns it off", "OWN_REACTIONS_CACHE")
	f.Int(&c.writeBatch, "write-batch", postgres.DefaultMaxBatch, "most reaction writes one transaction carries (group commit: writes that arrive while others commit share the next transaction)", "WRITE_BATCH")
	f.Int(&c.writeCommitters, "write-committers", postgres.DefaultCommitters, "reaction-write transactions run at once; at most -db-max-conns", "WRITE_COMMITTERS")
	f.Int(&c.sse.MaxClients, "sse-max-clients", 10_000, "live-event streams (GET /events) one process holds; more get 503", "SSE_MAX_CLIENTS")
	f.Int(&c.sse.Buffer, "sse-buffer", 256, "events a stream may fall behind before the server ends it (the client resumes with Last-Event-ID)", "SSE_BUFFER")
	f.Duration(&c.sse.Heartbeat, "sse-heartbeat", 15*time.Second, "how often an idle event stream gets a comment, to keep proxies from closing it", "SSE_HEARTBEAT")
	f.Int(&c.sse.WindowEvents, "sse-window-events", sse.DefaultWindowEvents, "newest live events the process holds in memory, so that streams resuming after one of them (Last-Event-ID) cost no Redis read", "SSE_WINDOW_EVENTS")
	f.Int(&c.sse.WindowBytes, "sse-window-bytes", sse.DefaultWindowBytes, "bytes those events may take at most; the oldest go first", "SSE_WINDOW_BYTES")
	f.Int(&c.sse.DeepResumes, "sse-deep-resumes", 4, "streams resuming from before the window that read the feed from Redis at once, on connections of their own, until each is live; others wait up to 1s, then get a stream that only says when to retry", "SSE_DEEP_RESUMES")
	f.Int(&c.rateLimit, "rate-limit", 0, "requests each client may make per -rate-limit-window; 0 turns rate limiting off", "RATE_LIMIT")
	f.Duration(&c.rateWindow, "rate-limit-window", time.Second, "window of -rate-limit", "RATE_LIMIT_WINDOW")
	f.String(&raw.proxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client; empty: the client is the TCP peer", "TRUSTED_PROXIES")
	f.String(&raw.secret, "auth-secret", "", "HS256 secret (at least 32 bytes) that bearer tokens are signed with; turns authentication on", "AUTH_SECRET")
	f.String(&raw.secretFile, "auth-secret-file", "", "file holding the HS256 secret, instead of -auth-secret", "AUTH_SECRET_FILE")
	f.String(&raw.jwks, "auth-jwks", "", "JWKS file of the public keys (RSA for RS256, Ed25519 for EdDSA) that bearer tokens are signed with; turns authentication on", "AUTH_JWKS")
	f.String(&c.auth.Audience, "auth-audience", "", "audience (aud) every token must name; empty: aud is not checked", "AUTH_AUDIENCE")
	f.String(&c.auth.Issuer, "auth-issuer", "", "issuer (iss) every token must name; empty: iss is not checked", "AUTH_ISSUER")
	f.Duration(&c.auth.Leeway, "auth-leeway", 30*time.Second, "clock skew allowed when checking a token's exp and nbf", "AUTH_LEEWAY")
	f.Bool(&c.auth.Reads, "auth-reads", false, "reads need a token too; by default only writes do", "AUTH_READS")
	f.String(&raw.origins, "cors-origins", "", "comma-separated origins (https://chat.example.com, https://*.example.com or *) whose browser clients may call the API; empty: no CORS headers", "CORS_ORIGINS")
	if sub == "token" {
		f.String(&c.token.subject, "sub", "", "the token's subject: the user it acts as")
		f.String(&c.token.role, "role", "", "server for a server token, which may act for any user; empty for a user token")
		f.Duration(&c.token.ttl, "ttl", time.Hour, "how long the token is valid")
	}
}

// validOrigin reports whether s is a browser origin, scheme://host[:port],
// where the host may hold one * wildcard, or * alone.
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	scheme, host, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || host == "" || strings.ContainsAny(host, "/?#@") || strings.Count(host, "*") > 1 {
		return false
	}
	u, err := url.Parse(scheme + "://" + strings.Replace(host, "*", "wildcard", 1))
	return err == nil && u.Hostname() != ""
}

func (t tokenRequest) validate() error {
	return daemon.FirstError(
		daemon.Require(t.subject != "", "sub", "the token needs a subject: the user id it acts as"),
		daemon.Require(t.subject == "" || messageapi.ValidUserID(t.subject), "sub", "%s", messageapi.UserIDRule),
		daemon.Require(t.role == "" || t.role == auth.RoleServer, "role", "use server, or leave it out for a user token"),
		daemon.Require(t.ttl > 0, "ttl", "must be positive"),
	)
}

func (c *config) validate() error {
	_, accessErr := daemon.ParseLevel(c.accessLogLevel)
	return daemon.FirstError(
		c.Common.Validate(),
		daemon.Require(accessErr == nil, "access-log-level", "use debug, info, warn or error"),
		daemon.Require(c.dbReadConns >= 1 && c.dbReadConns <= 1000, "db-read-conns", "must be from 1 to 1000"),
		daemon.Require(c.heavyReads >= 1 && c.heavyReads <= c.dbReadConns, "heavy-reads", "must be from 1 to -db-read-conns"),
		daemon.Require(c.requestTimeout > 0, "request-timeout", "must be positive"),
		daemon.Require(c.cachePages >= 1 && c.cachePages <= 1000, "cache-pages", "must be from 1 to 1000"),
		daemon.Require(c.cacheChannelPages >= 1 && c.cacheChannelPages <= 1000, "cache-channel-pages", "must be from 1 to 1000"),
		daemon.Require(c.cacheChannels >= 0 && c.cacheChannels <= 10_000_000, "cache-channels", "must be from 0 to 10000000"),
		daemon.Require(c.cacheBytes >= 1<<20 && c.cacheBytes <= 1<<40, "cache-bytes", "must be from 1 MiB (1048576) to 1 TiB"),
		daemon.Require(c.nearCacheBytes >= 1<<20 && c.nearCacheBytes <= 1<<34, "near-cache-bytes", "must be from 1 MiB (1048576) to 16 GiB"),
		daemon.Require(c.streamMaxLen >= 1000, "stream-max-len", "must be at least 1000"),
		daemon.Require(c.maxReactionTypes >= 0, "max-reaction-types", "must not be negative"),
		daemon.Require(c.maxConns >= 0, "max-conns", "must not be negative"),
		daemon.Require(c.maxConnsPerClient >= 0, "max-conns-per-client", "must not be negative"),
		daemon.Require(c.idleTimeout >= time.Second, "idle-timeout", "must be at least 1s"),
		daemon.Require(c.nearCacheMaxAge >= 0 && c.nearCacheMaxAge <= time.Minute, "near-cache-max-age", "must be from 0 to 1m"),
		daemon.Require(c.ownReactions >= 0 && c.ownReactions <= 10_000_000, "own-reactions-cache", "must be from 0 to 10000000"),
		daemon.Require(c.writeBatch >= 1 && c.writeBatch <= 10_000, "write-batch", "must be from 1 to 10000"),
		daemon.Require(c.writeCommitters >= 1 && c.writeCommitters <= c.DBMaxConns, "write-committers", "must be from 1 to -db-max-conns"),
		daemon.Require(c.sse.MaxClients >= 1, "sse-max-clients", "must be at least 1"),
		daemon.Require(c.sse.Buffer >= 16, "sse-buffer", "must be at least 16"),
		daemon.Require(c.sse.Heartbeat >= time.Second, "sse-heartbeat", "must be at least 1s"),
		daemon.Require(c.sse.WindowEvents >= 1 && c.sse.WindowEvents <= 1_000_000, "sse-window-events", "must be from 1 to 1000000"),
		daemon.Require(c.sse.WindowBytes >= 1<<20 && c.sse.WindowBytes <= 1<<30, "sse-window-bytes", "must be from 1 MiB (1048576) to 1 GiB"),
		daemon.Require(c.sse.DeepResumes >= 1 && c.sse.DeepResumes <= 64, "sse-deep-resumes", "must be from 1 to 64"),
		daemon.Require(c.rateLimit >= 0, "rate-limit", "must not be negative"),
		daemon.Require(c.rateWindow >= time.Millisecond, "rate-limit-window", "must be at least 1ms"),
		daemon.Require(c.auth.Leeway >= 0 && c.auth.Leeway <= 5*time.Minute, "auth-leeway", "must be from 0 to 5m"),
		// Settings that only mean something with a key would otherwise
		// leave an operator believing reads or audiences are checked.
		daemon.Require(c.auth.Enabled() || !c.auth.Reads, "auth-reads", "needs -auth-secret, -auth-secret-file or -auth-jwks"),
		daemon.Require(c.auth.Enabled() || c.auth.Audience == "", "auth-audience", "needs -auth-secret, -auth-secret-file or -auth-jwks"),
		daemon.Require(c.auth.Enabled() || c.auth.Issuer == "", "auth-issuer", "needs -auth-secret, -auth-secret-file or -auth-jwks"),
	)
}
