package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"messageapi/postgres/postgrestest"
	"messageapi/redis/redistest"
)

// TestRunInProcess runs the real program, as main does, on port 0: it
// logs its addresses, serves a write and a read, and stops cleanly when
// its context ends.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL": postgrestest.NewSchema(t),
		"REDIS_URL":    redistest.URL(),
		"REDIS_PREFIX": redistest.NewPrefix(t),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, logw)
		logw.Close()
	}()

	var mu sync.Mutex
	addrs := map[string]string{}
	var lines []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var rec struct{ Msg, Server, Addr, Service string }
			_ = json.Unmarshal(sc.Bytes(), &rec)
			mu.Lock()
			lines = append(lines, sc.Text())
			if rec.Msg == "listening" {
				addrs[rec.Server] = rec.Addr
			}
			mu.Unlock()
		}
	}()
	addr := func(server string) string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			a := addrs[server]
			mu.Unlock()
			if a != "" {
				return a
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("run did not log the %s address", server)
		return ""
	}
	api, admin := "http://"+addr("api"), "http://"+addr("admin")

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post(api+"/messages", "application/json", strings.NewReader(`{"text":"in process","user_id":"u"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /messages = %v, %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(api + resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the new message = %v, %v", resp, err)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after its context ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	<-scanned
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if !strings.Contains(l, `"service":"api"`) {
			t.Errorf("log line without the service: %s", l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("last log line = %s, want stopped", last)
	}
}
