package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A service that cannot keep up: each request takes 50 ms and only one
// connection is allowed, while 100 requests a second are due. The queue
// grows by about 80 requests a second, so the later requests wait seconds
// for the connection. Timed from their due times, the tail shows that
// wait; timed from the send, every latency would be about 50 ms.
func TestLatencyIncludesTheWaitForAConnection(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(50 * time.Millisecond)
		served.Add(1)
	}))
	defer srv.Close()
	next := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		return req
	}

	r := send(next, 100, 500*time.Millisecond, 1, time.Millisecond)

	if r.scheduled != 50 {
		t.Errorf("scheduled %d requests, want 50 (100/s for 0.5 s)", r.scheduled)
	}
	if r.sent != r.scheduled || served.Load() != int64(r.scheduled) || len(r.latency) != r.scheduled || r.failed != 0 {
		t.Errorf("scheduled %d, sent %d, served %d, timed %d, failed %d: every request must be sent and answered",
			r.scheduled, r.sent, served.Load(), len(r.latency), r.failed)
	}
	// 50 requests one after another take 2.5 s; the last was due at
	// 0.49 s, so it waited about 2 s.
	if p99 := quantile(r.latency, .99); p99 < time.Second {
		t.Errorf("p99 %v: the wait for the connection is missing (one request alone takes 50 ms)", p99)
	}
	if r.late < r.scheduled/2 {
		t.Errorf("%d of %d requests late, want most of them", r.late, r.scheduled)
	}
	if d := quantile(r.delay, .99); d < time.Second {
		t.Errorf("send delay p99 %v, want the seconds the queue waited", d)
	}
	line := r.String()
	t.Log(line)
	for _, want := range []string{"100/s asked", "0 failed", "0 not sent", "50 scheduled, 50 sent", "p99 "} {
		if !strings.Contains(line, want) {
			t.Errorf("report %q lacks %q", line, want)
		}
	}
}

// A service that keeps up: nothing is late, and latencies stay near the
// service time.
func TestOnTimeWhenTheServiceKeepsUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	next := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		return req
	}

	r := send(next, 200, 250*time.Millisecond, 8, 20*time.Millisecond)

	if r.scheduled != 50 || r.sent != 50 || len(r.latency) != 50 {
		t.Fatalf("scheduled %d, sent %d, answered %d, want 50 each", r.scheduled, r.sent, len(r.latency))
	}
	// Generous bounds: the machine running the test may be busy.
	if r.late > 5 {
		t.Errorf("%d requests late on an idle service: %s", r.late, r)
	}
	if p50 := quantile(r.latency, .5); p50 > 20*time.Millisecond {
		t.Errorf("p50 %v on a service that answers at once", p50)
	}
}
