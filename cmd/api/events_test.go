package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"messageapi/httpapi"
)

// eventStream is an open GET /events.
type eventStream struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// openStream opens GET path as an event stream with the given headers.
func (a *testAPI) openStream(path string, header http.Header) *eventStream {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := a.Client().Do(req)
	if err != nil {
		cancel()
		a.t.Fatal(err)
	}
	s := &eventStream{t: a.t, resp: resp, lines: make(chan string, 1024), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	a.t.Cleanup(s.close)
	return s
}

func (s *eventStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event's type and data, skipping comments and
// the retry line; "" when the stream ended.
func (s *eventStream) next() (typ, data string) {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			switch {
			case !ok:
				return "", ""
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && typ != "":
				return typ, data
			}
		case <-timeout:
			s.t.Fatal("no event in 10s")
		}
	}
}

func TestEventsRejectsBadRequests(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	many := strings.Repeat("message_id=01a21f7a-2fc7-7d69-871a-cc8848a2d0bf&", 101)
	for query, field := range map[string]string{
		"message_id=nope":                    "message_id",
		"message_id=":                        "message_id",
		many[:len(many)-1]:                   "message_id",
		"last_event_id=abc":                  "last_event_id",
		"last_event_id=1-2-3":                "last_event_id",
		"last_event_id=99999999999999999999": "last_event_id",
		"duration=0s":                        "duration",
		"duration=2h":                        "duration",
		"duration=soon":                      "duration",
		"duration=1s&duration=2s":            "duration",
		"since=1":                            "since",
	} {
		r := api.get("/events?" + query)
		if body := wantStatus(t, r, 400, "invalid_argument"); body != nil {
			if fields, _ := body["fields"].(map[string]any); fields[field] == nil {
				t.Errorf("%s: fields = %v, want %s", query, body["fields"], field)
			}
		}
	}
	r := api.send(http.MethodGet, "/events", http.Header{"Last-Event-Id": {"x"}}, nil)
	wantStatus(t, r, 400, "invalid_argument")
}

// TestEventsStreamNewMessages: a stream starts with ready, then carries a
// message posted after it; HEAD answers the headers alone.
func TestEventsStreamNewMessages(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	s := api.openStream("/events?duration=5s", nil)
	if s.resp.StatusCode != 200 || s.resp.Header.Get("Content-Type") != "text/event-stream" || s.resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /events = %d, %v", s.resp.StatusCode, s.resp.Header)
	}
	if typ, _ := s.next(); typ != "ready" {
		t.Fatalf("first event %q, want ready", typ)
	}
	wantStatus(t, api.post("/messages", `{"text": "hello", "user_id": "alice"}`), 201, "")
	typ, data := s.next()
	if typ != "message.new" || !strings.Contains(data, `"text":"hello"`) {
		t.Errorf("event %s %s, want message.new with the message", typ, data)
	}
	head := api.do(http.MethodHead, "/events", "", nil)
	if head.status != 200 || head.header.Get("Content-Type") != "text/event-stream" || len(head.body) != 0 {
		t.Errorf("HEAD /events = %d %v %q", head.status, head.header, head.body)
	}
}

// TestEventsCapacity: past -sse-max-clients streams, a new one gets 503
// with Retry-After; when one ends, there is room again.
func TestEventsCapacity(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t) // 4 streams at most
	var streams []*eventStream
	for range 4 {
		s := api.openStream("/events", nil)
		if typ, _ := s.next(); typ != "ready" {
			t.Fatalf("stream did not start: %q", typ)
		}
		streams = append(streams, s)
	}
	r := api.get("/events")
	wantStatus(t, r, 503, "unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	streams[0].close()
	eventually(t, func() bool {
		r := api.do(http.MethodHead, "/events", "", nil)
		return r.status == 200
	})
}

// TestEventsTakeATokenFromTheQuery: with reads needing a token, a stream
// without one is refused, and access_token, for EventSource, serves as
// one; a bad one is refused like a bad header.
func TestEventsTakeATokenFromTheQuery(t *testing.T) {
	t.Parallel()
	api := newAuthedAPI(t, func(c *httpapi.Config) { c.AuthReads = true })
	checkUnauthenticated(t, api.as("", "GET", "/events", ""), "")
	checkUnauthenticated(t, api.as("", "GET", "/events?access_token=forged", ""), "invalid_token")
	s := api.openStream("/events?access_token="+userToken(t, "alice"), nil)
	if typ, _ := s.next(); s.resp.StatusCode != 200 || typ != "ready" {
		t.Fatalf("GET /events with access_token = %d, first event %q", s.resp.StatusCode, typ)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}
