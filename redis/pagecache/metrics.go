package pagecache

import (
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/redis"
)

// metrics are the package's Prometheus metrics, one instance per Client,
// exported with the client's when it has a Registerer (see
// redis.MetricSet).
type metrics struct {
	cache *prometheus.CounterVec
	fills *prometheus.CounterVec

	evictions prometheus.Counter

	near      *prometheus.CounterVec
	nearDrops prometheus.Counter
	nearLive  prometheus.Gauge

	own          *prometheus.CounterVec
	ownLoads     *prometheus.CounterVec
	ownHeld      prometheus.Gauge
	ownAnnounced *prometheus.CounterVec
}

var metricSet = redis.DeclareMetrics(func() (*metrics, []prometheus.Collector) {
	m := &metrics{
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_cache_requests_total",
			Help: "Page reads asked of the cache, by result: hit, miss (served from PostgreSQL) or error.",
		}, []string{"result"}),
		fills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_cache_fills_total",
			Help: "Rebuilds and extensions of a channel's cached page index, by result: installed (a rebuild), extended, refused (a write raced it), error, or joined (a request waited for one in flight).",
		}, []string{"result"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_cache_evictions_total",
			Help: "Channels whose cached pages this process dropped from Redis to keep them within the byte budget (-cache-bytes, -cache-channels).",
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
	return m, []prometheus.Collector{m.cache, m.fills, m.evictions, m.near, m.nearDrops, m.nearLive, m.own, m.ownLoads, m.ownHeld, m.ownAnnounced}
})
