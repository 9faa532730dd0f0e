package postgres_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

// The names the pool's collector exports, and the deprecated names they
// replace, exported for one release with the same values (durations in
// nanoseconds then, in seconds now).
var (
	poolMetricNames = []string{
		"pgxpool_acquires_total", "pgxpool_acquire_duration_seconds_total", "pgxpool_canceled_acquires_total",
		"pgxpool_empty_acquires_total", "pgxpool_empty_acquire_wait_seconds_total", "pgxpool_new_conns_total",
		"pgxpool_max_lifetime_destroys_total", "pgxpool_max_idle_destroys_total",
		"pgxpool_acquired_conns", "pgxpool_constructing_conns", "pgxpool_idle_conns", "pgxpool_max_conns", "pgxpool_total_conns",
	}
	deprecatedPoolMetrics = map[string]struct {
		name  string
		scale float64 // old value = new value × scale
	}{
		"pgxpool_acquire_count":              {"pgxpool_acquires_total", 1},
		"pgxpool_acquire_duration_ns":        {"pgxpool_acquire_duration_seconds_total", 1e9},
		"pgxpool_canceled_acquire_count":     {"pgxpool_canceled_acquires_total", 1},
		"pgxpool_empty_acquire":              {"pgxpool_empty_acquires_total", 1},
		"pgxpool_empty_acquire_wait_time_ns": {"pgxpool_empty_acquire_wait_seconds_total", 1e9},
		"pgxpool_new_conns_count":            {"pgxpool_new_conns_total", 1},
		"pgxpool_max_lifetime_destroy_count": {"pgxpool_max_lifetime_destroys_total", 1},
		"pgxpool_max_idle_destroy_count":     {"pgxpool_max_idle_destroys_total", 1},
	}
)

// TestPoolMetricsFollowPrometheusNames: the pool's counters end in
// _total and its durations are in seconds (promlint finds nothing to
// say of them), they count what the pool did, and the deprecated names
// say they are deprecated and carry the same values.
func TestPoolMetricsFollowPrometheusNames(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewDB(t)
	if _, err := db.Pool().Exec(context.Background(), "select pg_sleep(0.01)"); err != nil {
		t.Fatal(err)
	}
	c := postgres.NewPoolCollector(db, prometheus.Labels{"db": "postgres"})
	problems, err := testutil.CollectAndLint(c, poolMetricNames...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values, helps := map[string]float64{}, map[string]string{}
	for _, mf := range families {
		m := mf.GetMetric()[0]
		if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "db" || l[0].GetValue() != "postgres" {
			t.Errorf("%s has labels %v, want db=postgres", mf.GetName(), l)
		}
		values[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		helps[mf.GetName()] = mf.GetHelp()
	}
	for _, name := range poolMetricNames {
		if _, ok := values[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if values["pgxpool_acquires_total"] < 1 || values["pgxpool_new_conns_total"] < 1 {
		t.Errorf("the pool acquired %v and opened %v connections, want at least one each",
			values["pgxpool_acquires_total"], values["pgxpool_new_conns_total"])
	}
	if s := values["pgxpool_acquire_duration_seconds_total"]; s <= 0 || s > 60 {
		t.Errorf("pgxpool_acquire_duration_seconds_total = %v, want seconds, a little above 0", s)
	}
	for old, now := range deprecatedPoolMetrics {
		if got, want := values[old], values[now.name]*now.scale; math.Abs(got-want) > 1e-9*want {
			t.Errorf("deprecated %s = %v, want %v (%s × %g)", old, got, want, now.name, now.scale)
		}
		if !strings.HasPrefix(helps[old], "Deprecated: use "+now.name) {
			t.Errorf("deprecated %s's help %q does not point to %s", old, helps[old], now.name)
		}
	}
	if len(values) != len(poolMetricNames)+len(deprecatedPoolMetrics) {
		t.Errorf("the collector exports %d metrics, want %d", len(values), len(poolMetricNames)+len(deprecatedPoolMetrics))
	}
}
