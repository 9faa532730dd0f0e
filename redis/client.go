package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"messageapi"
)

// Config configures a Client.
type Config struct {
	// URL is a redis:// URL of a single server.
	URL string
	// ClusterAddrs, when set, are seed addresses (host:port) of a Redis
	// Cluster, used instead of URL; a password in URL, if any, is used
	// for the cluster too.
	ClusterAddrs []string
	// Prefix begins the hash tag of every key made by Key.
	Prefix string
	// Timeout bounds dialing and each read and write on a connection, so a
	// slow or unreachable Redis costs at most this much per call. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// PoolSize caps the connections; 0 keeps go-redis's default.
	PoolSize int
	// BreakAfter is how many calls in a row must fail before the circuit
	// breaker opens; while open, calls fail at once for BreakFor, then one
	// probe decides. Defaults: 5 and 1 second.
	BreakAfter uint32
	BreakFor   time.Duration
	// Registerer, when set, receives the client's metrics (breaker state
	// and pool statistics) and those of every capability package linked
	// into the program (see MetricSet): cache results, stream and feed
	// appends, the near cache and own reactions.
	Registerer prometheus.Registerer
	// Log receives breaker state changes; nil discards them.
	Log *slog.Logger
	// Name tells this client's log lines from another's of the same
	// process; default "main".
	Name string
}

// DefaultTimeout is Config.Timeout when none is given.
const DefaultTimeout = 250 * time.Millisecond

// Client is a connection pool to Redis with the key prefix of this
// deployment. Creating it does not connect, so a process starts while Redis
// is down; connections are made on demand.
//
// Every call made with Do goes through a circuit breaker: once Redis has
// failed BreakAfter calls in a row, calls fail at once instead of each
// waiting for a timeout, so an unreachable Redis costs microseconds per
// request and callers fall back to PostgreSQL.
//
// Keys are grouped under hash tags (see Key), so that every script and
// every multi-key command touches one hash slot, and a Redis Cluster can
// serve them: the cached pages share one tag, each stream partition has
// its own.
type Client struct {
	rdb     goredis.UniversalClient
	cluster bool
	prefix  string
	breaker *gobreaker.CircuitBreaker[struct{}]
	metrics *metrics
}

// Open returns a Client for cfg. It fails only on invalid configuration.
func Open(cfg Config) (*Client, error) {
	var single *goredis.Options
	if cfg.URL != "" || len(cfg.ClusterAddrs) == 0 {
		var err error
		if single, err = goredis.ParseURL(cfg.URL); err != nil {
			return nil, errors.New("invalid redis url")
		}
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	c := &Client{prefix: cfg.Prefix, metrics: newMetrics(), cluster: len(cfg.ClusterAddrs) > 0}
	if c.cluster {
		opts := &goredis.ClusterOptions{
			Addrs:       cfg.ClusterAddrs,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
			MaxRetries: 1, DialerRetries: 1, PoolSize: cfg.PoolSize,
			// A master that dies sends no MOVED: without a reload the
			// client would keep dialling it for a minute after its replica
			// took over.
			ClusterStateReloadInterval: time.Second,
		}
		if single != nil {
			opts.Username, opts.Password, opts.TLSConfig = single.Username, single.Password, single.TLSConfig
		}
		c.rdb = goredis.NewClusterClient(opts)
	} else {
		single.DialTimeout = timeout
		single.ReadTimeout = timeout
		single.WriteTimeout = timeout
		single.PoolTimeout = timeout
		// One retry hides a pooled connection that died with a Redis
		// restart; more, or retried dials, would multiply the cost of an
		// outage.
		single.MaxRetries = 1
		single.DialerRetries = 1
		if cfg.PoolSize > 0 {
			single.PoolSize = cfg.PoolSize
		}
		c.rdb = goredis.NewClient(single)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	breakAfter := cfg.BreakAfter
	if breakAfter == 0 {
		breakAfter = 5
	}
	c.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cmp.Or(cfg.BreakFor, time.Second),
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= breakAfter },
		// An answer from Redis, even an error reply, means it is up.
		IsSuccessful: func(err error) bool {
			var reply goredis.Error
			return err == nil || errors.Is(err, goredis.Nil) || errors.As(err, &reply) || errors.Is(err, context.Canceled)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			c.metrics.breaker.Set(float64(to))
			log.Warn("redis circuit breaker changed state", "client", cmp.Or(cfg.Name, "main"), "from", from.String(), "to", to.String())
		},
	})
	if cfg.Registerer != nil {
		if err := c.metrics.register(cfg.Registerer, c.rdb); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Do runs fn, one Redis call made on Redis(), through the circuit breaker,
// and returns its error untranslated, so callers can tell goredis.Nil and
// error replies apart before they pass it to Translate. While the breaker
// is open, fn is not run and Do fails at once.
func (c *Client) Do(fn func() error) error {
	_, err := c.breaker.Execute(func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Redis returns the underlying go-redis client. The capability packages
// make their calls on it inside Do; a call made outside Do (a test's, or a
// long-lived subscription) bypasses the breaker.
func (c *Client) Redis() goredis.UniversalClient { return c.rdb }

// Cluster reports whether the client talks to a Redis Cluster.
func (c *Client) Cluster() bool { return c.cluster }

// Key returns a key of the group named group: {prefix+group}+suffix.
// Keys of one group share a hash tag, and so a slot of a Redis Cluster:
// a script or a multi-key command may touch only keys of one group.
// Config validation keeps braces out of the prefix.
func (c *Client) Key(group, suffix string) string {
	return "{" + c.prefix + group + "}" + suffix
}

// PoolSize returns the most connections the client opens to one server.
func (c *Client) PoolSize() int {
	if cc, ok := c.rdb.(*goredis.ClusterClient); ok {
		return cc.Options().PoolSize
	}
	return c.rdb.(*goredis.Client).Options().PoolSize
}

// Prefix returns the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Ping checks that Redis answers. It bypasses the circuit breaker, so
// readiness reports Redis itself, not the breaker's memory of it.
func (c *Client) Ping(ctx context.Context) error {
	return Translate(c.rdb.Ping(ctx).Err(), "ping")
}

// Translate reports every Redis failure as unavailable: to callers Redis
// is an accelerator that may be missing, never a reason for a 500. op
// names the operation in the message; a nil err stays nil, and a
// cancelled context stays a cancellation.
func Translate(err error, op string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return messageapi.Unavailable("cache", fmt.Errorf("redis %s: %w", op, err))
}

// LogTo sends go-redis's own log lines (dial failures, pool events) to log
// at debug level, instead of unstructured lines on standard error. An
// outage is already reported by readiness, the breaker and metrics.
// go-redis keeps one logger per process, so only main calls this.
func LogTo(log *slog.Logger) {
	goredis.SetLogger(slogPrintf{log})
}

type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
