package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/redis"
)

// metrics are the package's Prometheus metrics, one instance per Client,
// exported with the client's when it has a Registerer (see
// redis.MetricSet).
type metrics struct {
	publish *prometheus.CounterVec
}

var metricSet = redis.DeclareMetrics(func() (*metrics, []prometheus.Collector) {
	m := &metrics{
		publish: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_stream_appends_total",
			Help: "Reaction changes appended to the stream, by result: ok, error or dropped (queue full); failed ones are swept.",
		}, []string{"result"}),
	}
	return m, []prometheus.Collector{m.publish}
})
