package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi/httpapi/apitest"
)

// TestEveryRouteIsDocumented walks the router: every route it has is an
// operation of openapi.yaml, and every operation is a route.
func TestEveryRouteIsDocumented(t *testing.T) {
	srv, err := New(UseCases{})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler(Config{
		Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry()),
		Ready: func() bool { return true },
	})
	mux, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("routes returned a %T, not a chi router", h)
	}
	var routed []string
	err = chi.Walk(mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routed)
	slices.Sort(documented)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.yaml has %s, which the router does not route", d)
		}
	}
	if len(routed) == 0 {
		t.Error("the router has no routes")
	}
}

func TestYAMLToJSON(t *testing.T) {
	got, err := yamlToJSON([]byte("a: 'x'\nb: [1, 2.5, true, null]\n'200': {c: '2026-11-27'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var v, want any
	_ = json.Unmarshal(got, &v)
	_ = json.Unmarshal([]byte(`{"a":"x","b":[1,2.5,true,null],"200":{"c":"2026-11-27"}}`), &want)
	if a, b := mustJSON(v), mustJSON(want); a != b {
		t.Errorf("yamlToJSON = %s, want %s", a, b)
	}
	// YAML that JSON would say differently is refused, not rewritten.
	for _, src := range []string{"a: 2026-11-27\n", "200: x\n", "a: {1: x}\n"} {
		if got, err := yamlToJSON([]byte(src)); err == nil {
			t.Errorf("yamlToJSON(%q) = %s, want an error", src, got)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
