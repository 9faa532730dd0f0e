package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"messageapi"
	"messageapi/postgres/postgrestest"
	"messageapi/redis"
	"messageapi/redis/feed"
	"messageapi/redis/redistest"
	"messageapi/sse"
)

// countingFeed is the real feed, counting the calls that read ranges of
// it. While a gate is set, its range reads wait for the gate to close, as
// on a slow Redis.
type countingFeed struct {
	sse.Feed
	tails, sinces atomic.Int64
	gate          atomic.Pointer[chan struct{}]
}

func (f *countingFeed) Tail(ctx context.Context, count, maxBytes int) ([]messageapi.FeedEntry, string, error) {
	f.tails.Add(1)
	return f.Feed.Tail(ctx, count, maxBytes)
}

func (f *countingFeed) Since(ctx context.Context, after string, count int) ([]messageapi.FeedEntry, bool, error) {
	f.sinces.Add(1)
	if g := f.gate.Load(); g != nil {
		<-*g
	}
	return f.Feed.Since(ctx, after, count)
}

// runningAPI starts a's background work, waits for its hub to find its
// place in the feed, and serves a until the test ends.
func runningAPI(t *testing.T, a *app) *testAPI {
	t.Helper()
	a.startBackground(t)
	eventually(t, func() bool { return a.hub.Position() != "" })
	api := &testAPI{Server: httptest.NewServer(a.handler()), t: t}
	t.Cleanup(api.Close)
	return api
}

// postMessages posts n messages through api and returns the ids of the
// feed's entries once it holds n of them.
func postMessages(t *testing.T, api *testAPI, rc *redis.Client, n int) []string {
	t.Helper()
	for i := range n {
		if r := api.do("POST", "/messages", "application/json", strings.NewReader(fmt.Sprintf(`{"text":"m%d","user_id":"u"}`, i))); r.status != 201 {
			t.Fatalf("POST /messages = %d: %s", r.status, r.body)
		}
	}
	events := feed.New(rc, feed.Config{})
	var ids []string
	eventually(t, func() bool {
		entries, _, err := events.Since(context.Background(), "0-0", n+1)
		ids = ids[:0]
		for _, e := range entries {
			ids = append(ids, e.ID)
		}
		return err == nil && len(ids) == n
	})
	return ids
}

// resumeOnce opens GET /events after lastID and returns the ids of the
// events before ready, or the status of a refusal.
func resumeOnce(ctx context.Context, base, lastID string) ([]string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events?duration=30s", nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	ids, err := readUntilReady(resp)
	return ids, 200, err
}

// readUntilReady reads the ids of a stream's events up to ready.
func readUntilReady(resp *http.Response) ([]string, error) {
	var ids []string
	var id string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case line == "event: ready":
			return ids, nil
		case line == "event: reset":
			return ids, fmt.Errorf("reset at %s", id)
		case strings.HasPrefix(line, "event: "):
			ids = append(ids, id)
		}
	}
	return ids, fmt.Errorf("the stream ended before ready: %v", sc.Err())
}

// TestResumeStormIsServedFromTheWindow: many clients resume at once from a
// process that has just started, before its hub has read the feed. Each
// gets what it missed, in order, and the process reads the feed's ranges
// once, not once per client.
func TestResumeStormIsServedFromTheWindow(t *testing.T) {
	t.Parallel()
	db, rc := postgrestest.NewDB(t), redistest.NewClient(t)
	hubCfg := sse.Config{MaxClients: 1000, Buffer: 256, Heartbeat: time.Minute, Block: 50 * time.Millisecond}
	writer := runningAPI(t, newTestApp(t, db, rc, hubCfg))
	ids := postMessages(t, writer, rc, 60)

	// A restarted process: its hub starts after the clients are back.
	second := newTestApp(t, db, rc, hubCfg)
	counted := &countingFeed{Feed: second.feed}
	second.rehub(counted, hubCfg)
	srv := httptest.NewServer(second.handler())
	t.Cleanup(srv.Close)

	const clients = 300
	type result struct {
		ids    []string
		status int
		err    error
	}
	results := make(chan result, clients)
	for range clients {
		go func() {
			got, status, err := resumeOnce(context.Background(), srv.URL, ids[9])
			results <- result{got, status, err}
		}()
	}
	time.Sleep(200 * time.Millisecond) // most are waiting for the hub
	second.startBackground(t)
	want := strings.Join(ids[10:], " ")
	failed := 0
	for range clients {
		r := <-results
		if got := strings.Join(r.ids, " "); r.err != nil || r.status != 200 || got != want {
			if failed++; failed <= 3 {
				t.Errorf("a client got %d, %v, events [%s]; want 200 and [%s]", r.status, r.err, got, want)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients did not resume", failed, clients)
	}
	if tails, sinces := counted.tails.Load(), counted.sinces.Load(); tails != 1 || sinces != 0 {
		t.Errorf("%d clients resumed with %d reads of the feed's tail and %d of ranges; want 1 and 0", clients, tails, sinces)
	}
}

// TestDeepResumesAreBounded: a resume from before the window reads the
// feed and gets all it missed, and gives its place back once it is live;
// while as many deep resumes run as may, the next gets a stream that only
// says when to retry, and resumes inside the window go on.
func TestDeepResumesAreBounded(t *testing.T) {
	t.Parallel()
	db, rc := postgrestest.NewDB(t), redistest.NewClient(t)
	a := newTestApp(t, db, rc, sse.Config{MaxClients: 100, Buffer: 256, Heartbeat: time.Minute,
		Block: 50 * time.Millisecond, WindowEvents: 10, DeepResumes: 1})
	deep := &countingFeed{Feed: a.feed}
	a.hub.ResumeFrom(deep)
	api := runningAPI(t, a)
	ids := postMessages(t, api, rc, 30)
	eventually(t, func() bool { return a.hub.Position() == ids[29] })
	ctx := context.Background()

	check := func(what, after string, want []string) {
		t.Helper()
		got, status, err := resumeOnce(ctx, api.URL, after)
		if status != 200 || err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %d, %v, [%s]; want [%s]", what, status, err, strings.Join(got, " "), strings.Join(want, " "))
		}
	}
	check("inside the window", ids[24], ids[25:])
	if n := deep.sinces.Load(); n != 0 {
		t.Errorf("a resume inside the window read the feed %d times", n)
	}
	check("before the window", ids[4], ids[5:])
	if n := deep.sinces.Load(); n == 0 {
		t.Error("a resume from before the window did not read the feed")
	}

	// A deep resume that has caught up and streams on holds no place.
	liveCtx, endLive := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(liveCtx, "GET", api.URL+"/events", nil)
	req.Header.Set("Last-Event-ID", ids[4])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readUntilReady(resp); err != nil || len(got) != 25 {
		t.Fatalf("a deep resume kept open: %d events, %v", len(got), err)
	}
	check("before the window, while a deep resume streams on", ids[4], ids[5:])
	endLive()
	resp.Body.Close()

	// A deep resume held up by a slow read of the feed takes the one
	// place; the next deep resume is told to retry, while resumes inside
	// the window go on.
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { deep.gate.Store(nil); close(gate) })
	t.Cleanup(openGate) // before the server's close, which waits for its handlers
	deep.gate.Store(&gate)
	reads := deep.sinces.Load()
	type result struct {
		ids    []string
		status int
		err    error
	}
	held := make(chan result, 1)
	go func() {
		got, status, err := resumeOnce(ctx, api.URL, ids[4])
		held <- result{got, status, err}
	}()
	eventually(t, func() bool { return deep.sinces.Load() > reads }) // it holds the place, waiting
	refusedCtx, cancel := context.WithTimeout(ctx, 5*time.Second)    // a resume let in would wait at the gate
	defer cancel()
	req, _ = http.NewRequestWithContext(refusedCtx, "GET", api.URL+"/events", nil)
	req.Header.Set("Last-Event-ID", ids[4])
	r := api.exchange(req, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(string(r.body), "retry: ") || strings.Contains(string(r.body), "event:") {
		t.Errorf("a deep resume beyond the limit = %d: %q; want a stream of only retry:, which an EventSource follows", r.status, r.body)
	}
	check("inside the window, while deep resumes are full", ids[24], ids[25:])
	openGate()
	if got := <-held; got.status != 200 || got.err != nil || strings.Join(got.ids, " ") != strings.Join(ids[5:], " ") {
		t.Errorf("the held-up deep resume: %d, %v, [%s]; want [%s]", got.status, got.err, strings.Join(got.ids, " "), strings.Join(ids[5:], " "))
	}
	check("before the window, once one may run again", ids[4], ids[5:])
}

// TestHubOnAFeedTrimmedEmpty: a process that starts on a feed trimmed to
// nothing takes its last id as its position, tells its clients no reset,
// and streams what comes next.
func TestHubOnAFeedTrimmedEmpty(t *testing.T) {
	t.Parallel()
	db, rc := postgrestest.NewDB(t), redistest.NewClient(t)
	hubCfg := sse.Config{MaxClients: 10, Buffer: 64, Heartbeat: time.Minute, Block: 20 * time.Millisecond}
	writer := runningAPI(t, newTestApp(t, db, rc, hubCfg))
	postMessages(t, writer, rc, 3)
	events := feed.New(rc, feed.Config{})
	if err := rc.Redis().XTrimMaxLen(context.Background(), events.Key(), 0).Err(); err != nil {
		t.Fatal(err)
	}

	api := runningAPI(t, newTestApp(t, db, rc, hubCfg))
	s := api.openStream("/events", nil)
	if typ, _ := s.next(); typ != "ready" {
		t.Fatalf("first event %q, want ready", typ)
	}
	time.Sleep(300 * time.Millisecond) // many reads of the feed
	if r := writer.do("POST", "/messages", "application/json", strings.NewReader(`{"text":"after","user_id":"u"}`)); r.status != 201 {
		t.Fatalf("POST /messages = %d", r.status)
	}
	if typ, _ := s.next(); typ != "message.new" {
		t.Errorf("after a trim to nothing, the stream brought %q, want the new message (no reset)", typ)
	}
}
