package redis

import (
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
)

// metrics are the package's Prometheus metrics. They always exist, so code
// never checks for nil; they are exported only when a Registerer is given.
type metrics struct {
	cache   *prometheus.CounterVec
	fills   *prometheus.CounterVec
	publish *prometheus.CounterVec
	feed    *prometheus.CounterVec
	breaker prometheus.Gauge

	near      *prometheus.CounterVec
	nearDrops prometheus.Counter
	nearLive  prometheus.Gauge

	own          *prometheus.CounterVec
	ownLoads     *prometheus.CounterVec
	ownHeld      prometheus.Gauge
	ownAnnounced *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_cache_requests_total",
			Help: "Page reads asked of the cache, by result: hit, miss (served from PostgreSQL) or error.",
		}, []string{"result"}),
		fills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_cache_fills_total",
			Help: "Rebuilds of the cached page index, by result: installed, refused (a write raced it) or error.",
		}, []string{"result"}),
		publish: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_stream_appends_total",
			Help: "Reaction changes appended to the stream, by result: ok, error or dropped (queue full); failed ones are swept.",
		}, []string{"result"}),
		feed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_feed_appends_total",
			Help: "Events appended to the live feed, by result: ok, error or dropped (queue full).",
		}, []string{"result"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_redis_breaker_state",
			Help: "State of the Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
		near: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_near_cache_requests_total",
			Help: "Page reads asked of the in-process near cache, by result: hit, miss (read from Redis) or bypass (its subscription is down).",
		}, []string{"result"}),
		nearDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_near_cache_drops_total",
			Help: "Announced changes of the cached pages that emptied the near cache.",
		}),
		nearLive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_near_cache_live",
			Help: "1 while the near cache's subscription to changes is confirmed, else 0 (every read goes to Redis).",
		}),
		own: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_own_reactions_lookups_total",
			Help: "A reader's own reactions on one message, by where they came from: hit (the process's copy of the message), store (PostgreSQL) or bypass (PostgreSQL, the near cache's subscription is down).",
		}, []string{"result"}),
		ownLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_own_reactions_loads_total",
			Help: "Loads of every live reaction of a message into the process's copy, by result: ok, too_many (the message has more than a copy may hold) or error.",
		}, []string{"result"}),
		ownHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_own_reactions_held",
			Help: "Reactions held in the process's copies of messages.",
		}),
		ownAnnounced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_own_reactions_announced_total",
			Help: "Changes of a user's reactions on a message announced to the other processes, by result: ok, error or dropped (queue full).",
		}, []string{"result"}),
	}
}

func (m *metrics) register(reg prometheus.Registerer, rdb goredis.UniversalClient) error {
	for _, c := range []prometheus.Collector{m.cache, m.fills, m.publish, m.feed, m.breaker, m.near, m.nearDrops, m.nearLive, m.own, m.ownLoads, m.ownHeld, m.ownAnnounced, poolCollector{rdb}} {
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
