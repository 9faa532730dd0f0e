package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"messageapi"
	"messageapi/cmd/internal/daemon"
	"messageapi/postgres"
	"messageapi/redis"
)

const usage = `Usage: api [subcommand] [flags]

Subcommands:
  (none)        serve the API (migrating the schema first)
  migrate       migrate the schema and exit
  healthcheck   exit 0 when the admin /readyz of a running API answers 200 (for container health checks)`

// config is the API's configuration. Each field is a flag with an
// environment-variable fallback; flags win.
type config struct {
	daemon.Common
	addr             string
	accessLogLevel   string
	dbReadConns      int
	heavyReads       int
	requestTimeout   time.Duration
	cachePages       int
	streamMaxLen     int
	maxReactionTypes int
	rateLimit        int
	rateWindow       time.Duration
	trustedProxies   []netip.Prefix
}

// parseConfig reads the subcommand ("serve" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "serve"
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "healthcheck") {
		sub, args = args[0], args[1:]
	}
	var c config
	var proxies string
	f := daemon.NewFlags("api", usage, getenv, output)
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
	f.Int(&c.cachePages, "cache-pages", redis.DefaultCachePages, "how many of the latest pages of 10 messages Redis caches", "CACHE_PAGES")
	f.Int(&c.streamMaxLen, "stream-max-len", redis.DefaultStreamMaxLen, "approximate length the reaction stream is trimmed to (entries trimmed unread are folded by the sweeper)", "STREAM_MAX_LEN")
	f.Int(&c.maxReactionTypes, "max-reaction-types", messageapi.DefaultMaxReactionTypes, "distinct reaction types one message may have; a post of one more gets 422; 0 turns the cap off", "MAX_REACTION_TYPES")
	f.Int(&c.rateLimit, "rate-limit", 0, "requests each client may make per -rate-limit-window; 0 turns rate limiting off", "RATE_LIMIT")
	f.Duration(&c.rateWindow, "rate-limit-window", time.Second, "window of -rate-limit", "RATE_LIMIT_WINDOW")
	f.String(&proxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client; empty: the client is the TCP peer", "TRUSTED_PROXIES")
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	for _, cidr := range strings.Split(proxies, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			return config{}, "", fmt.Errorf("invalid -trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", cidr)
		}
		c.trustedProxies = append(c.trustedProxies, prefix)
	}
	return c, sub, c.validate()
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
		daemon.Require(c.streamMaxLen >= 1000, "stream-max-len", "must be at least 1000"),
		daemon.Require(c.maxReactionTypes >= 0, "max-reaction-types", "must not be negative"),
		daemon.Require(c.rateLimit >= 0, "rate-limit", "must not be negative"),
		daemon.Require(c.rateWindow >= time.Millisecond, "rate-limit-window", "must be at least 1ms"),
	)
}
