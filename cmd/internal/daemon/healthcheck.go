package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HealthCheck asks the admin server at addr whether the process is alive
// (/healthz), for container health checks in images that have no curl.
// It is a liveness check, not a readiness check: an orchestrator restarts
// a container whose health check fails, and restarting a process because
// PostgreSQL or Redis is down does not bring them back; the process
// recovers by itself when they return. Load balancers ask /readyz.
func HealthCheck(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if strings.HasPrefix(addr, ":") { // listening on every interface
		addr = "localhost" + addr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %s", resp.Status)
	}
	return nil
}
