package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHealthCheckAsksLiveness: the health check of both programs passes
// while a dependency is down (the admin server's /readyz answers 503)
// and fails when the admin server does not say the process is alive.
func TestHealthCheckAsksLiveness(t *testing.T) {
	t.Parallel()
	down := Check{Name: "redis", Func: func(context.Context) error { return errors.New("connection refused") }}
	admin := httptest.NewServer(AdminHandler(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), down))
	defer admin.Close()
	addr := strings.TrimPrefix(admin.URL, "http://")
	resp, err := http.Get(admin.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down = %d, want 503", resp.StatusCode)
	}
	if err := HealthCheck(context.Background(), addr); err != nil {
		t.Errorf("HealthCheck with Redis down: %v, want it to pass", err)
	}

	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer dead.Close()
	if err := HealthCheck(context.Background(), strings.TrimPrefix(dead.URL, "http://")); err == nil {
		t.Error("HealthCheck passed though /healthz answered 503")
	}
}
