package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/redis"
)

// appendsMetric counts the changes appended to the stream, one counter
// per Client, exported with the client's metrics when it has a Registerer
// (see redis.MetricSet).
var appendsMetric = redis.DeclareMetrics(func() (*prometheus.CounterVec, []prometheus.Collector) {
	appends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_stream_appends_total",
		Help: "Reaction changes appended to the stream, by result: ok, error or dropped (queue full); failed ones are swept.",
	}, []string{"result"})
	return appends, []prometheus.Collector{appends}
})
