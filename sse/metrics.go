package sse

import "github.com/prometheus/client_golang/prometheus"

// metrics are the live events' metrics.
type metrics struct {
	clients      prometheus.Gauge
	events       prometheus.Counter
	dropped      *prometheus.CounterVec
	resets       prometheus.Counter
	readErrors   prometheus.Counter
	lag          prometheus.Histogram
	resumes      *prometheus.CounterVec
	deepResumes  *prometheus.CounterVec
	windowEvents prometheus.Gauge
	windowBytes  prometheus.Gauge
	windowFrom   prometheus.Gauge
	// windowFromOld is windowFrom under its name before it said it is a
	// timestamp; deprecated, kept for one release for the alerts that
	// use it.
	windowFromOld prometheus.Gauge
}

// window records the window's size and start. The hub's lock is held.
func (m *metrics) window(w *feedWindow) {
	m.windowEvents.Set(float64(len(w.entries)))
	m.windowBytes.Set(float64(w.bytes))
	m.windowFrom.Set(float64(w.from.Ms) / 1000)
	m.windowFromOld.Set(float64(w.from.Ms) / 1000)
}

// deepResume records how a deep resume got its turn, or did not.
func (m *metrics) deepResume(ok, waited bool) {
	outcome := "started"
	switch {
	case !ok:
		outcome = "refused"
	case waited:
		outcome = "waited"
	}
	m.deepResumes.WithLabelValues(outcome).Inc()
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_sse_clients",
			Help: "Clients streaming live events from this process.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_events_total",
			Help: "Events written to clients, live or replayed, with the stream's own ready and reset events.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_sse_dropped_total",
			Help: "Event streams the server ended: slow (the client fell a buffer behind), write (a write failed or timed out), shutdown.",
		}, []string{"reason"}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_resets_total",
			Help: "Reset events sent: the feed no longer held a client's position.",
		}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_feed_errors_total",
			Help: "Failed reads of the live feed.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_sse_delivery_lag_seconds",
			Help:    "Time from an event's commit to its write to a client.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.resumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_sse_resumes_total",
		Help: "Streams that resumed after a Last-Event-ID, by where their replay came from: window (the process's memory), feed (Redis).",
	}, []string{"from"})
	m.deepResumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_sse_deep_resumes_total",
		Help: "Resumes from before the window, by how they got their turn: started (at once), waited, refused (told to retry).",
	}, []string{"outcome"})
	m.windowEvents = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_events",
		Help: "Events of the live feed held in the process's window.",
	})
	m.windowBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_bytes",
		Help: "Approximate bytes the window holds.",
	})
	m.windowFrom = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_start_timestamp_seconds",
		Help: "Time (Unix seconds) of the feed position the window starts after: a resume from before it reads Redis.",
	})
	m.windowFromOld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_start_seconds",
		Help: "Deprecated: use messageapi_sse_window_start_timestamp_seconds, of the same value; this name goes in the next release.",
	})
	reg.MustRegister(m.clients, m.events, m.dropped, m.resets, m.readErrors, m.lag,
		m.resumes, m.deepResumes, m.windowEvents, m.windowBytes, m.windowFrom, m.windowFromOld)
	return m
}
