package feed

import (
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/redis"
)

// appendsMetric counts the events appended to the feed, one counter per
// Client, exported with the client's metrics when it has a Registerer
// (see redis.MetricSet).
var appendsMetric = redis.DeclareMetrics(func() (*prometheus.CounterVec, []prometheus.Collector) {
	appends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_feed_appends_total",
		Help: "Events appended to the live feed, by result: ok, error or dropped (queue full).",
	}, []string{"result"})
	return appends, []prometheus.Collector{appends}
})
