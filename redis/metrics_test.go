package redis_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi/redis"
	_ "messageapi/redis/feed"
	_ "messageapi/redis/pagecache"
	_ "messageapi/redis/stream"
)

// TestOpenRegistersTheMetricsOfEveryCapability: opening a client with a
// Registerer exports the metrics of every capability package, before any
// of them is used, and a second client without one collides with nothing.
func TestOpenRegistersTheMetricsOfEveryCapability(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	for _, cfg := range []redis.Config{{Registerer: reg}, {}} {
		cfg.URL = "redis://127.0.0.1:1/0"
		c, err := redis.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	var got []string
	for d := range ch {
		got = append(got, name.FindStringSubmatch(d.String())[1])
	}
	slices.Sort(got)
	want := []string{
		"messageapi_cache_evictions_total", "messageapi_cache_fills_total", "messageapi_cache_requests_total",
		"messageapi_feed_appends_total",
		"messageapi_near_cache_drops_total", "messageapi_near_cache_live", "messageapi_near_cache_requests_total",
		"messageapi_own_reactions_announced_total", "messageapi_own_reactions_held",
		"messageapi_own_reactions_loads_total", "messageapi_own_reactions_lookups_total",
		"messageapi_redis_breaker_state",
		"messageapi_redis_pool_connections", "messageapi_redis_pool_hits_total", "messageapi_redis_pool_idle_connections",
		"messageapi_redis_pool_misses_total", "messageapi_redis_pool_stale_connections_total", "messageapi_redis_pool_timeouts_total",
		"messageapi_stream_appends_total",
	}
	if !slices.Equal(got, want) {
		t.Errorf("registered metrics:\n%v\nwant:\n%v", got, want)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}
