package httpapi_test

import (
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi/httpapi"
)

// TestFastEventStreamsStayOutOfTheLatencyHistogram: an event stream lasts
// as long as its client stays, so its duration is no request latency; it
// is counted as a request but not observed in the latency histogram,
// which would otherwise put every stream in the slowest bucket. A
// refused /events (400, in JSON) is an ordinary request and is observed.
func TestFastEventStreamsStayOutOfTheLatencyHistogram(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	api := newFastAPI(t, func(c *httpapi.Config) { c.Metrics = httpapi.NewMetrics(reg) })
	for api.hub.Position() == "" { // the hub has found its place in the feed
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := api.Client().Get(api.URL + "/events?duration=1s")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /events = %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // until the stream ends, after 1s
	resp.Body.Close()
	api.want(api.do("GET", "/events?duration=forever", ""), 400, "invalid_argument")
	api.want(api.do("GET", "/messages", ""), 200, "")

	// The middleware records after the answer is written: give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for count(t, reg, "messageapi_http_requests_total", "/events", "200") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := count(t, reg, "messageapi_http_requests_total", "/events", "200"); got != 1 {
		t.Errorf("streams counted as requests: %v, want 1", got)
	}
	if got := count(t, reg, "messageapi_http_request_duration_seconds", "/events", "200"); got != 0 {
		t.Errorf("streams observed in the latency histogram: %v, want none", got)
	}
	if got := count(t, reg, "messageapi_http_request_duration_seconds", "/events", "400"); got != 1 {
		t.Errorf("refused /events observed in the latency histogram: %v, want 1", got)
	}
	if got := count(t, reg, "messageapi_http_request_duration_seconds", "/messages", "200"); got != 1 {
		t.Errorf("GET /messages observed in the latency histogram: %v, want 1", got)
	}
}

// count is the value of the counter, or the sample count of the histogram,
// name{method="GET",route,code} in reg; 0 when it has no such series.
func count(t *testing.T, reg *prometheus.Registry, name, route, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"method": "GET", "route": route, "code": code}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
