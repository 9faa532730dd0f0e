package redis

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
)

// metrics are the client's Prometheus metrics: its own, and an instance
// of every MetricSet. They always exist, so code never checks for nil;
// they are exported only when a Registerer is given.
type metrics struct {
	breaker prometheus.Gauge

	sets       []any                  // by MetricSet.index
	collectors []prometheus.Collector // of sets
}

func newMetrics() *metrics {
	m := &metrics{
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_redis_breaker_state",
			Help: "State of the Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
	}
	setsMu.Lock()
	defer setsMu.Unlock()
	for _, newSet := range sets {
		set, collectors := newSet()
		m.sets = append(m.sets, set)
		m.collectors = append(m.collectors, collectors...)
	}
	return m
}

// A MetricSet is the metrics of one capability built on the Client (the
// page cache, the stream, the live feed), which that capability's package
// declares and uses. Every Client has an instance of every set declared
// in the program, made by Open and registered with Config.Registerer
// beside the client's own metrics when one is given. So a set is exported
// as soon as the Client is opened, whether or not the process uses the
// capability, and a process's second client, whose metrics are not
// registered, has instances of its own that collide with nothing.
type MetricSet[T any] struct{ index int }

var (
	setsMu sync.Mutex
	sets   []func() (any, []prometheus.Collector)
)

// DeclareMetrics declares a MetricSet whose instances newSet makes, each
// with the collectors to register. Call it to initialize a package-level
// variable, so that the set is declared before any Client is opened.
func DeclareMetrics[T any](newSet func() (T, []prometheus.Collector)) MetricSet[T] {
	setsMu.Lock()
	defer setsMu.Unlock()
	sets = append(sets, func() (any, []prometheus.Collector) { return newSet() })
	return MetricSet[T]{index: len(sets) - 1}
}

// Of returns c's instance of the set.
func (s MetricSet[T]) Of(c *Client) T {
	if s.index >= len(c.metrics.sets) {
		panic("redis: a MetricSet was declared after the client was opened")
	}
	return c.metrics.sets[s.index].(T)
}

func (m *metrics) register(reg prometheus.Registerer, rdb goredis.UniversalClient) error {
	for _, c := range append([]prometheus.Collector{m.breaker, poolCollector{rdb}}, m.collectors...) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// poolCollector exports go-redis pool statistics, read at scrape time.
type poolCollector struct{ rdb goredis.UniversalClient }

var (
	poolHits     = prometheus.NewDesc("messageapi_redis_pool_hits_total", "Times a free connection was found in the pool.", nil, nil)
	poolMisses   = prometheus.NewDesc("messageapi_redis_pool_misses_total", "Times no free connection was in the pool.", nil, nil)
	poolTimeouts = prometheus.NewDesc("messageapi_redis_pool_timeouts_total", "Times waiting for a connection timed out.", nil, nil)
	poolTotal    = prometheus.NewDesc("messageapi_redis_pool_connections", "Connections in the pool.", nil, nil)
	poolIdle     = prometheus.NewDesc("messageapi_redis_pool_idle_connections", "Idle connections in the pool.", nil, nil)
	poolStale    = prometheus.NewDesc("messageapi_redis_pool_stale_connections_total", "Stale connections removed from the pool.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolHits, poolMisses, poolTimeouts, poolTotal, poolIdle, poolStale} {
		ch <- d
	}
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.rdb.PoolStats()
	ch <- prometheus.MustNewConstMetric(poolHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(poolMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(poolTimeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns))
	ch <- prometheus.MustNewConstMetric(poolStale, prometheus.CounterValue, float64(s.StaleConns))
}
