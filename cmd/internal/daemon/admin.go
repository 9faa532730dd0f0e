package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check: nil when the dependency is usable.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// AdminHandler serves, on the admin address only:
//   - /healthz: 200 while the process runs (liveness, for container
//     health checks and the healthcheck subcommand; it never checks
//     dependencies, so an outage does not get the process restarted);
//   - /readyz: 200 when every check passes, else 503, with each check's
//     state (the causes go to the log, not to the response): readiness,
//     for load balancers;
//   - /metrics: the registry in Prometheus format;
//   - /debug/pprof/: the runtime profiles.
func AdminHandler(reg *prometheus.Registry, log *slog.Logger, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, states := http.StatusOK, map[string]string{}
		for _, c := range checks {
			if err := c.Func(ctx); err != nil {
				status, states[c.Name] = http.StatusServiceUnavailable, "unavailable"
				log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
				continue
			}
			states[c.Name] = "ok"
		}
		overall := "ok"
		if status != http.StatusOK {
			overall = "unavailable"
		}
		writeStatus(w, status, map[string]any{"status": overall, "checks": states})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func writeStatus(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
