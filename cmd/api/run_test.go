package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"messageapi/postgres/postgrestest"
	"messageapi/redis/redistest"
)

// process is the real program run in-process, as main runs it, on port 0.
type process struct {
	api, admin string // base URLs
	cancel     context.CancelFunc
	done       chan error // run's result
	scanned    chan struct{}
	mu         sync.Mutex
	lines      []string // the log
}

// runInProcess starts run with args (besides the addresses) and env, and
// returns once it has logged both addresses. It is stopped when the test
// ends, if it has not been.
func runInProcess(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logw := io.Pipe()
	p := &process{cancel: cancel, done: make(chan error, 1), scanned: make(chan struct{})}
	args = append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, args...)
	go func() {
		p.done <- run(ctx, args, func(k string) string { return env[k] }, logw)
		logw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-p.scanned
	})
	addrs := map[string]string{}
	go func() {
		defer close(p.scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var rec struct{ Msg, Server, Addr, Service string }
			_ = json.Unmarshal(sc.Bytes(), &rec)
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			if rec.Msg == "listening" {
				addrs[rec.Server] = rec.Addr
			}
			p.mu.Unlock()
		}
	}()
	addr := func(server string) string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			p.mu.Lock()
			a := addrs[server]
			p.mu.Unlock()
			if a != "" {
				return a
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("run did not log the %s address", server)
		return ""
	}
	p.api, p.admin = "http://"+addr("api"), "http://"+addr("admin")
	return p
}

// adminStatus is the status the admin path answers, 0 when it cannot be
// asked.
func (p *process) adminStatus(path string) int {
	resp, err := http.Get(p.admin + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitAdmin waits until the admin path answers status.
func (p *process) waitAdmin(t *testing.T, path string, status int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := p.adminStatus(path)
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %d, want %d", path, got, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunInProcess runs the real program, as main does, on port 0: it
// logs its addresses, serves a write and a read, and stops cleanly when
// its context ends.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	p := runInProcess(t, map[string]string{
		"DATABASE_URL": postgrestest.NewSchema(t),
		"REDIS_URL":    redistest.URL(),
		"REDIS_PREFIX": redistest.NewPrefix(t),
	})
	api := p.api
	p.waitAdmin(t, "/readyz", http.StatusOK)
	resp, err := http.Get(p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`messageapi_build_info{goversion=%q,`, runtime.Version()); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s...} 1", want)
	}
	for _, want := range []string{`pgxpool_acquires_total{db="postgres"}`, `pgxpool_acquires_total{db="postgres-read"}`,
		`pgxpool_acquire_count{db="postgres"}`} { // the last deprecated, for one release
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = http.Post(api+"/messages", "application/json", strings.NewReader(`{"text":"in process","user_id":"u"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /messages = %v, %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(api + resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the new message = %v, %v", resp, err)
	}
	resp.Body.Close()

	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("run returned %v after its context ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	<-p.scanned
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if !strings.Contains(l, `"service":"api"`) {
			t.Errorf("log line without the service: %s", l)
		}
	}
	if last := p.lines[len(p.lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("last log line = %s, want stopped", last)
	}
}

// TestHealthcheckIsLivenessNotReadiness: during a Redis outage the API
// is not ready (/readyz fails, so a load balancer sends its traffic
// elsewhere) but alive, so `api healthcheck`, the container's health
// check, passes and the orchestrator does not restart a process that
// would recover by itself once Redis is back.
func TestHealthcheckIsLivenessNotReadiness(t *testing.T) {
	t.Parallel()
	redis := redistest.StartServer(t)
	p := runInProcess(t, map[string]string{
		"DATABASE_URL": postgrestest.NewSchema(t),
		"REDIS_URL":    redis.URL(),
	}, "-redis-timeout", "200ms")
	healthcheck := func() error {
		return run(context.Background(), []string{"healthcheck", "-admin-addr", strings.TrimPrefix(p.admin, "http://")},
			func(string) string { return "" }, io.Discard)
	}
	p.waitAdmin(t, "/readyz", http.StatusOK)
	if err := healthcheck(); err != nil {
		t.Fatalf("api healthcheck of a ready API: %v", err)
	}

	redis.Stop()
	p.waitAdmin(t, "/readyz", http.StatusServiceUnavailable)
	if err := healthcheck(); err != nil {
		t.Errorf("api healthcheck during a Redis outage: %v, want it to pass", err)
	}
	if got := p.adminStatus("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz during a Redis outage = %d, want 200", got)
	}

	p.cancel() // the process is gone: the health check fails
	<-p.done
	if err := healthcheck(); err == nil {
		t.Error("api healthcheck of a stopped API passed")
	}
}
