package projection

import (
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
)

// Metrics are the projection's Prometheus metrics.
type Metrics struct {
	events       prometheus.Counter
	batchSize    prometheus.Histogram
	foldDuration prometheus.Histogram
	eventLatency prometheus.Histogram
	viewsWritten prometheus.Counter
	redelivered  prometheus.Counter
	deadLettered prometheus.Counter
	swept        prometheus.Counter
	foldErrors   prometheus.Counter
	heldBack     prometheus.Counter
	cacheErrors  prometheus.Counter
	lag          prometheus.Gauge
	pending      *prometheus.GaugeVec
	unread       *prometheus.GaugeVec
	owned        prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_events_total",
			Help: "Stream entries folded into the read model.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_projection_batch_size",
			Help:    "Entries per folded batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		foldDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_projection_batch_duration_seconds",
			Help:    "Time to fold, refresh and acknowledge one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		eventLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_projection_event_latency_seconds",
			Help:    "Time from a reaction change's commit to its fold, for changes brought by the stream.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		viewsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_views_written_total",
			Help: "message_views rows rewritten; below events when batches coalesce hot messages.",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_redeliveries_total",
			Help: "Entries delivered again: claimed from another consumer or re-read after a restart.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_dead_lettered_total",
			Help: "Entries moved to the dead-letter stream.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_swept_total",
			Help: "Changes folded by the sweeper because no stream entry brought them.",
		}),
		foldErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_errors_total",
			Help: "Failed fold attempts (each is retried).",
		}),
		heldBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_held_back_total",
			Help: "Entries left for the next batch because another transaction held their reaction row or view.",
		}),
		cacheErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_projection_cache_errors_total",
			Help: "Failed refreshes of cached views.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_projection_lag_seconds",
			Help: "Age of the oldest reaction change not yet in message_views (0 when none).",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "messageapi_projection_pending_entries",
			Help: "Stream entries delivered to the consumer group and not yet acknowledged, by partition.",
		}, []string{"partition"}),
		unread: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "messageapi_projection_unread_entries",
			Help: "Stream entries the consumer group has not read yet, by partition; no series for a partition while Redis cannot tell.",
		}, []string{"partition"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_projection_partitions_owned",
			Help: "Partitions of the stream this worker holds the lease of (0 when it consumes all, without leases).",
		}),
	}
	reg.MustRegister(m.events, m.batchSize, m.foldDuration, m.eventLatency, m.viewsWritten, m.redelivered,
		m.deadLettered, m.swept, m.foldErrors, m.heldBack, m.cacheErrors, m.lag, m.pending, m.unread, m.owned)
	return m
}

// backlog records what partition's group has still to do. An unknown
// unread count (Redis cannot tell after entries were deleted from the
// stream) removes the partition's series: absent is how Prometheus says
// unknown, where a -1 would sum and compare as a count.
func (m *Metrics) backlog(partition string, b messageapi.StreamBacklog) {
	m.pending.WithLabelValues(partition).Set(float64(b.Pending))
	if b.Unread < 0 {
		m.unread.DeleteLabelValues(partition)
		return
	}
	m.unread.WithLabelValues(partition).Set(float64(b.Unread))
}
