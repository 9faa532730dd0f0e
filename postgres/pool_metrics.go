package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolMetric is one statistic of a pgx pool as a Prometheus metric.
type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

// PoolCollector exports the statistics of a pgx pool: counters named
// _total, durations in seconds. It also exports, deprecated, the names
// the pgxpoolprometheus collector used before (pgxpool_acquire_count,
// the _ns durations...) with their old values, for one release, so the
// alerts that use them keep working meanwhile.
type PoolCollector struct {
	pool    *pgxpool.Pool
	metrics []poolMetric
}

// NewPoolCollector returns the collector of db's pool, its series
// carrying labels (such as db="postgres").
func NewPoolCollector(db *DB, labels prometheus.Labels) *PoolCollector {
	c := &PoolCollector{pool: db.pool}
	add := func(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) {
		c.metrics = append(c.metrics, poolMetric{prometheus.NewDesc(name, help, nil, labels), kind, value})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	seconds := func(ns int64) float64 { return float64(ns) / 1e9 }

	add("pgxpool_acquires_total", "Connections acquired from the pool.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	add("pgxpool_acquire_duration_seconds_total", "Total time spent acquiring connections from the pool, in seconds.", counter,
		func(s *pgxpool.Stat) float64 { return seconds(int64(s.AcquireDuration())) })
	add("pgxpool_canceled_acquires_total", "Acquires canceled by their context.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })
	add("pgxpool_empty_acquires_total", "Acquires that waited for a connection because the pool had none idle.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	add("pgxpool_empty_acquire_wait_seconds_total", "Total time acquires waited for a connection because the pool had none idle, in seconds.", counter,
		func(s *pgxpool.Stat) float64 { return seconds(int64(s.EmptyAcquireWaitTime())) })
	add("pgxpool_new_conns_total", "Connections opened.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) })
	add("pgxpool_max_lifetime_destroys_total", "Connections closed because they reached their maximum lifetime.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) })
	add("pgxpool_max_idle_destroys_total", "Connections closed because they were idle too long.", counter,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) })
	add("pgxpool_acquired_conns", "Connections acquired now.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	add("pgxpool_constructing_conns", "Connections being opened now.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) })
	add("pgxpool_idle_conns", "Connections idle now.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	add("pgxpool_max_conns", "The pool's maximum size.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })
	add("pgxpool_total_conns", "Connections open now: acquired, idle and being opened.", gauge,
		func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })

	// Deprecated: the names before, for one release.
	deprecated := func(name, use string, value func(*pgxpool.Stat) float64) {
		add(name, "Deprecated: use "+use+"; this name goes in the next release.", counter, value)
	}
	deprecated("pgxpool_acquire_count", "pgxpool_acquires_total",
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	deprecated("pgxpool_acquire_duration_ns", "pgxpool_acquire_duration_seconds_total (in seconds)",
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireDuration()) })
	deprecated("pgxpool_canceled_acquire_count", "pgxpool_canceled_acquires_total",
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })
	deprecated("pgxpool_empty_acquire", "pgxpool_empty_acquires_total",
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	deprecated("pgxpool_empty_acquire_wait_time_ns", "pgxpool_empty_acquire_wait_seconds_total (in seconds)",
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireWaitTime()) })
	deprecated("pgxpool_new_conns_count", "pgxpool_new_conns_total",
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) })
	deprecated("pgxpool_max_lifetime_destroy_count", "pgxpool_max_lifetime_destroys_total",
		func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) })
	deprecated("pgxpool_max_idle_destroy_count", "pgxpool_max_idle_destroys_total",
		func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) })
	return c
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector: one Stat of the pool for all.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	stat := c.pool.Stat()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(stat))
	}
}
