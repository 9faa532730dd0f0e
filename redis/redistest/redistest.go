// Package redistest gives each test its own key prefix on a real Redis, so
// tests run in parallel on one server without seeing each other's keys,
// and starts local redis-server processes for the tests that need a
// Redis of their own: one server they can stop (StartServer) or a Redis
// Cluster (StartCluster).
//
// The server comes from TEST_REDIS_URL (default: database 15 on
// localhost). A server that cannot be reached fails the test: it is never
// skipped.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"messageapi/internal/servicetest"
	"messageapi/redis"
)

// DefaultURL is the Redis tests use when TEST_REDIS_URL is unset.
const DefaultURL = "redis://localhost:6379/15"

// URL returns the URL of the test Redis.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewPrefix returns a key prefix of its own whose keys are deleted when
// the test ends.
func NewPrefix(tb testing.TB) string {
	tb.Helper()
	servicetest.Require(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() { deletePrefix(tb, prefix) })
	return prefix
}

// NewClient returns a Client on the test Redis with a prefix of its own.
func NewClient(tb testing.TB) *redis.Client {
	tb.Helper()
	return Open(tb, redis.Config{})
}

// Open returns a Client on the test Redis with cfg's other settings, and
// a prefix of its own unless cfg has one. It is closed when the test ends.
func Open(tb testing.TB, cfg redis.Config) *redis.Client {
	tb.Helper()
	servicetest.Require(tb)
	cfg.URL = URL()
	if cfg.Prefix == "" {
		cfg.Prefix = NewPrefix(tb)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := redis.Open(cfg)
	if err != nil {
		tb.Fatalf("redistest: open: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		tb.Fatalf("redistest: cannot reach the test Redis (set TEST_REDIS_URL, or run `make services`): %v", err)
	}
	return c
}

func deletePrefix(tb testing.TB, prefix string) {
	c, err := redis.Open(redis.Config{URL: URL(), Timeout: 5 * time.Second})
	if err != nil {
		tb.Errorf("redistest: cleanup: %v", err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := c.Redis()
	var keys []string
	// Keys start with the prefix, or with a hash tag that does ({prefix...}).
	for _, match := range []string{prefix + "*", "{" + prefix + "*"} {
		iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("redistest: cleanup scan: %v", err)
			return
		}
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			tb.Errorf("redistest: cleanup: %v", err)
		}
	}
}
