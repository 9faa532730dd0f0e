package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi"
)

// Config configures a Client.
type Config struct {
	// URL is a redis:// URL.
	URL string
	// Prefix starts every key this package writes.
	Prefix string
	// Timeout bounds dialing and each read and write on a connection, so a
	// slow or unreachable Redis costs at most this much per call. 0 means
	// 250 milliseconds.
	Timeout time.Duration
	// PoolSize caps the connections; 0 keeps go-redis's default.
	PoolSize int
}

// Client is a connection pool to Redis with the key prefix of this
// deployment. Creating it does not connect, so a process starts while Redis
// is down; connections are made on demand.
type Client struct {
	rdb     *goredis.Client
	prefix  string
	timeout time.Duration
}

// Open returns a Client for cfg. It fails only on invalid configuration.
func Open(cfg Config) (*Client, error) {
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, errors.New("invalid redis url")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 250 * time.Millisecond
	}
	opts.DialTimeout = timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout
	// One retry hides a pooled connection that died with a Redis restart;
	// more, or retried dials, would multiply the cost of an outage.
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	if cfg.PoolSize > 0 {
		opts.PoolSize = cfg.PoolSize
	}
	return &Client{rdb: goredis.NewClient(opts), prefix: cfg.Prefix, timeout: timeout}, nil
}

// Redis returns the underlying go-redis client, for metrics and tests.
func (c *Client) Redis() *goredis.Client { return c.rdb }

// Prefix returns the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	return translate(c.rdb.Ping(ctx).Err(), "ping")
}

// translate reports every Redis failure as unavailable: to callers Redis is
// an accelerator that may be missing, never a reason for a 500.
func translate(err error, op string) error {
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
// outage is already reported by readiness and metrics. go-redis keeps one
// logger per process, so only main calls this.
func LogTo(log *slog.Logger) {
	goredis.SetLogger(slogPrintf{log})
}

type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
