package sse

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"messageapi"
)

// TestWindowStartIsATimestamp: the window's start is exported as a Unix
// timestamp under a name that says so, and, for one release, under its
// old name too, with the same value.
func TestWindowStartIsATimestamp(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	w := newFeedWindow(10, 1<<20)
	w.reset(messageapi.FeedPosition{Ms: 1_765_000_000_250})
	m.window(w)
	for _, name := range []string{"messageapi_sse_window_start_timestamp_seconds", "messageapi_sse_window_start_seconds"} {
		want := "# HELP " + name + " " + help(t, reg, name) + "\n# TYPE " + name + " gauge\n" + name + " 1.76500000025e+09\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), name); err != nil {
			t.Error(err)
		}
	}
	if h := help(t, reg, "messageapi_sse_window_start_seconds"); !strings.HasPrefix(h, "Deprecated") {
		t.Errorf("the old name's help %q does not say it is deprecated", h)
	}
}

// help is the HELP text of the metric name in reg.
func help(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == name {
			return mf.GetHelp()
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}
