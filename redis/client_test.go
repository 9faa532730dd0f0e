package redis_test

import (
	"context"
	"testing"
	"time"

	"messageapi"
	"messageapi/redis"
)

// TestBreakerMakesAnOutageCheap points a client at a port where nothing
// listens: after BreakAfter failures, calls fail at once as unavailable
// instead of each paying for a dial.
func TestBreakerMakesAnOutageCheap(t *testing.T) {
	t.Parallel()
	c, err := redis.Open(redis.Config{URL: "redis://127.0.0.1:1/0", Timeout: 200 * time.Millisecond, BreakAfter: 3, BreakFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	get := func() error {
		return redis.Translate(c.Do(func() error { return c.Redis().Get(ctx, "k").Err() }), "get")
	}
	for range 3 {
		if err := get(); messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE {
			t.Fatalf("GET on a dead Redis = %v, want unavailable", err)
		}
	}
	start := time.Now()
	for range 100 {
		if err := get(); messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE {
			t.Fatalf("GET with the breaker open = %v, want unavailable", err)
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("100 calls with the breaker open took %v; want them to fail at once", d)
	}
}
