package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// sseEvent is one event of a stream, as a client received it.
type sseEvent struct {
	ID, Type string
	Data     []byte
	Got      time.Time
}

// liveEvent is an event's data.
type liveEvent struct {
	Type      string `json:"type"`
	MessageID string `json:"message_id"`
	Reaction  *struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Score int    `json:"score"`
	} `json:"reaction"`
	Counts *struct {
		ReactionCount  int64            `json:"reaction_count"`
		ReactionCounts map[string]int64 `json:"reaction_counts"`
		ReactionScores map[string]int64 `json:"reaction_scores"`
		Version        int64            `json:"version"`
	} `json:"counts"`
	At time.Time `json:"at"`
}

func (e sseEvent) decode(t *testing.T) liveEvent {
	t.Helper()
	var le liveEvent
	if err := json.Unmarshal(e.Data, &le); err != nil {
		t.Fatalf("event %s (%s) is not JSON: %v: %s", e.ID, e.Type, err, e.Data)
	}
	return le
}

// sseClient reads one event stream in the background.
type sseClient struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []sseEvent
	err    error
}

// openEvents opens GET url as an event stream and returns once its ready
// event has come, so that nothing published afterwards is missed. The
// stream is closed when the test ends.
func openEvents(t *testing.T, url, lastEventID string) *sseClient {
	t.Helper()
	c, err := dialEvents(url, lastEventID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// dialEvents is openEvents for any goroutine; the caller closes the stream.
func dialEvents(url, lastEventID string) (*sseClient, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sseEvent
		var data [][]byte
		for sc.Scan() {
			line := sc.Bytes()
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "": // a blank line ends an event; a comment starts with ':'
				if len(line) > 0 || e.Type == "" {
					continue
				}
				e.Data, e.Got = bytes.Join(data, []byte("\n")), time.Now()
				c.mu.Lock()
				c.events = append(c.events, e)
				c.mu.Unlock()
				if e.Type == "ready" {
					select {
					case <-ready:
					default:
						close(ready)
					}
				}
				e, data = sseEvent{}, nil
			case "id":
				e.ID = string(value)
			case "event":
				e.Type = string(value)
			case "data":
				data = append(data, slices.Clone(value))
			}
		}
		c.mu.Lock()
		c.err = sc.Err()
		c.mu.Unlock()
	}()
	select {
	case <-ready:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("GET %s ended before its ready event: %v", url, c.err)
	case <-time.After(10 * time.Second):
		c.close()
		return nil, fmt.Errorf("GET %s: no ready event in 10s", url)
	}
}

func (c *sseClient) close() {
	c.cancel()
	<-c.done
}

// received returns the events so far, without the stream's ready events.
func (c *sseClient) received() []sseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(c.events), func(e sseEvent) bool { return e.Type == "ready" })
}

// ended reports whether the server ended the stream.
func (c *sseClient) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// reactionBurst makes n reaction writes on messages from clients
// goroutines, each client with users of its own, and returns how many
// were acknowledged.
func reactionBurst(t *testing.T, base string, messages []string, n, clients int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 11))
			for range n / clients {
				m := messages[rng.IntN(len(messages))]
				user, typ := fmt.Sprintf("c%d-u%d", c, rng.IntN(5)), []string{"like", "love", "clap"}[rng.IntN(3)]
				var r reply
				var err error
				if rng.IntN(5) == 0 {
					r, err = try(http.MethodDelete, base+"/messages/"+m+"/reactions/"+typ+"?user_id="+user, "", "")
				} else {
					r, err = try(http.MethodPost, base+"/messages/"+m+"/reactions", "application/json",
						fmt.Sprintf(`{"type": %q, "user_id": %q, "score": %d}`, typ, user, rng.IntN(9)+1))
				}
				if err != nil || r.status >= 300 && r.status != 404 {
					t.Errorf("write failed: %v %d %s", err, r.status, r.body)
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked
}

// storedReactions returns every reaction row of the stack's schema, live
// or deleted: id -> score, or -1 when deleted.
func storedReactions(t *testing.T, s *stack) map[string]int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), databaseURLOf(s.env))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `select id::text, case when deleted_at is null then score else -1 end from reactions`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var score int
		if err := rows.Scan(&id, &score); err != nil {
			t.Fatal(err)
		}
		out[id] = score
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// caughtUp reports whether, for every message, the newest counts among
// events equal the message's counts as the API serves them.
func caughtUp(t *testing.T, events []sseEvent, served map[string]map[string]any) (bool, string) {
	t.Helper()
	newest := map[string]liveEvent{}
	for _, e := range events {
		le := e.decode(t)
		if le.Counts != nil && (newest[le.MessageID].Counts == nil || le.Counts.Version >= newest[le.MessageID].Counts.Version) {
			newest[le.MessageID] = le
		}
	}
	for id, m := range served {
		got := map[string]any{"reaction_count": float64(0), "reaction_counts": map[string]any{}, "reaction_scores": map[string]any{}}
		if le, ok := newest[id]; ok {
			b, _ := json.Marshal(le.Counts)
			got = map[string]any{}
			_ = json.Unmarshal(b, &got)
		}
		for _, k := range []string{"reaction_count", "reaction_counts", "reaction_scores"} {
			if fmt.Sprint(got[k]) != fmt.Sprint(m[k]) {
				return false, fmt.Sprintf("message %s: events say %s = %v, the API %v", id, k, got[k], m[k])
			}
		}
	}
	return true, ""
}

// TestLiveEventsAcrossAPIProcesses: clients of two API processes see the
// same events, every event of a burst of reaction writes, with each
// message's counts in order and equal at the end to what the API serves;
// each reaction's last event is its final state in PostgreSQL; a filtered
// client sees exactly its message's events; and a client that reconnects
// mid-burst with Last-Event-ID misses nothing and sees nothing twice.
func TestLiveEventsAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	s := startStack(t, "STREAM_PARTITIONS=4")
	api2 := startProc(t, "api", s.env)
	api2.waitReady()
	base2 := "http://" + api2.addr("api")

	all1 := openEvents(t, s.base+"/events", "")
	all2 := openEvents(t, base2+"/events", "")
	var messages []string
	for i := range 10 {
		messages = append(messages, s.createMessage(t, fmt.Sprintf("live %d", i)))
	}
	one := openEvents(t, base2+"/events?message_id="+messages[0], "")

	// A client that drops its stream mid-burst and resumes.
	resumed := openEvents(t, base2+"/events", "")
	var resumedTail *sseClient
	reconnected := make(chan struct{})
	go func() {
		defer close(reconnected)
		for len(resumed.received()) < 50 {
			time.Sleep(5 * time.Millisecond)
		}
		resumed.close()
		got := resumed.received()
		var err error
		if resumedTail, err = dialEvents(base2+"/events", got[len(got)-1].ID); err != nil {
			t.Errorf("resume: %v", err)
		}
	}()

	start := time.Now()
	acked := reactionBurst(t, s.base, messages, 1000, 8)
	t.Logf("%d reaction writes acknowledged in %v", acked, time.Since(start))
	<-reconnected
	if t.Failed() {
		return
	}
	defer resumedTail.close()
	resumedAll := func() []sseEvent { return append(resumed.received(), resumedTail.received()...) }

	served := map[string]map[string]any{}
	// Wait until the projection is done: the API serves the counts of
	// PostgreSQL's reactions, and every client's events have caught up.
	eventually(t, 30*time.Second, func() (bool, string) {
		for _, m := range messages {
			served[m] = expect(t, s.get(t, "/messages/"+m), 200).body
		}
		for name, events := range map[string][]sseEvent{"first API": all1.received(), "second API": all2.received(), "resumed": resumedAll()} {
			if ok, why := caughtUp(t, events, served); !ok {
				return false, name + ": " + why
			}
		}
		return true, ""
	})
	time.Sleep(200 * time.Millisecond) // any event still in flight would show below
	events1, events2 := all1.received(), all2.received()

	ids := func(events []sseEvent) []string {
		out := make([]string, len(events))
		for i, e := range events {
			out[i] = e.ID
		}
		return out
	}
	if !slices.Equal(ids(events1), ids(events2)) {
		t.Fatalf("the two API processes sent different streams: %d and %d events", len(events1), len(events2))
	}
	if !slices.IsSortedFunc(events1, func(a, b sseEvent) int { return compareIDs(t, a.ID, b.ID) }) {
		t.Error("event ids are not in order")
	}

	// Per message, counts only move forward; per reaction, the last event
	// is its final state.
	version := map[string]int64{}
	last := map[string]liveEvent{}
	types := map[string]int{}
	var lags []time.Duration
	for _, e := range events1 {
		le := e.decode(t)
		types[e.Type]++
		if le.Type != e.Type {
			t.Errorf("event %s: SSE type %s, data type %s", e.ID, e.Type, le.Type)
		}
		if le.Counts != nil {
			if le.Counts.Version < version[le.MessageID] {
				t.Errorf("message %s: version %d after %d", le.MessageID, le.Counts.Version, version[le.MessageID])
			}
			version[le.MessageID] = le.Counts.Version
		}
		if le.Reaction != nil {
			last[le.Reaction.ID] = le
			lags = append(lags, e.Got.Sub(le.At))
		}
	}
	if types["message.new"] != len(messages) {
		t.Errorf("%d message.new events, want %d", types["message.new"], len(messages))
	}
	stored := storedReactions(t, s)
	missing := 0
	for id, score := range stored {
		le, seen := last[id]
		switch {
		case score >= 0 && (!seen || le.Type == "reaction.deleted" || le.Reaction.Score != score):
			missing++
		case score < 0 && seen && le.Type != "reaction.deleted":
			t.Errorf("reaction %s is deleted; its last event is %s", id, le.Type)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d live reactions have no event with their final state", missing, len(stored))
	}
	t.Logf("%d events (%v) for %d reactions", len(events1), types, len(stored))
	if len(lags) > 0 {
		slices.Sort(lags)
		t.Logf("commit-to-client lag over %d reaction events: p50 %v, p95 %v, max %v",
			len(lags), lags[len(lags)/2], lags[len(lags)*95/100], lags[len(lags)-1])
	}

	// The filtered client, which connected after the messages were
	// posted, saw its message's reaction events, in the same order.
	var wantOne []string
	for _, e := range events1 {
		if e.Type != "message.new" && e.decode(t).MessageID == messages[0] {
			wantOne = append(wantOne, e.ID)
		}
	}
	if got := ids(one.received()); !slices.Equal(got, wantOne) {
		t.Errorf("filtered client: %d events, want the %d of its message", len(got), len(wantOne))
	}

	// An API process that shuts down ends its streams at once, rather
	// than waiting out its grace period for them; its clients resume
	// elsewhere.
	stopping := time.Now()
	if err := api2.stop(); err != nil {
		t.Errorf("stop the second API: %v", err)
	}
	took := time.Since(stopping)
	select {
	case <-all2.done:
	case <-time.After(2 * time.Second):
		t.Error("the second API stopped; its stream did not end")
	}
	if took > 5*time.Second {
		t.Errorf("the second API took %v to stop with streams open", took)
	}
	t.Logf("the second API stopped in %v with streams open", took)

	// The resumed client's two streams join without gap or repeat.
	first := resumed.received()
	joined := ids(resumedAll())
	from := slices.Index(ids(events1), joined[0])
	if from < 0 || !slices.Equal(joined, ids(events1)[from:]) {
		t.Errorf("resumed client: %d events before and %d after reconnecting do not match the %d of an unbroken stream from the same point",
			len(first), len(joined)-len(first), len(events1)-max(from, 0))
	}
}

// compareIDs orders two event ids, stream ids of the feed.
func compareIDs(t *testing.T, a, b string) int {
	ia, okA := messageapi.ParseFeedPosition(a)
	ib, okB := messageapi.ParseFeedPosition(b)
	if !okA || !okB {
		t.Fatalf("event ids %q, %q are not stream ids", a, b)
	}
	switch {
	case ia.After(ib):
		return 1
	case ib.After(ia):
		return -1
	}
	return 0
}

// TestStalledEventClientIsCutOff: a client that opens a stream and stops
// reading is cut off once it falls behind, without slowing other clients
// or growing the API's memory, and the API counts why.
func TestStalledEventClientIsCutOff(t *testing.T) {
	t.Parallel()
	s := startStack(t, "SSE_BUFFER=16", "REQUEST_TIMEOUT=2s")
	healthy := openEvents(t, s.base+"/events", "")

	// The stalled client reads nothing, through a receive buffer as small
	// as the kernel allows.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		v := metricValue(callAdmin(t, s.admin+"/metrics").raw, "messageapi_sse_clients")
		return v == 2, fmt.Sprintf("%v clients", v)
	})
	before := rss(t, s.api)

	// About 4 MB of events: far more than the socket buffers hold.
	text := strings.Repeat("x", 4900)
	var messages []string
	for i := range 800 {
		messages = append(messages, s.createMessage(t, fmt.Sprintf("%d %s", i, text)))
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		n := 0
		for _, e := range healthy.received() {
			if e.Type == "message.new" {
				n++
			}
		}
		return n == len(messages), fmt.Sprintf("the healthy client has %d of %d events", n, len(messages))
	})
	eventually(t, 20*time.Second, func() (bool, string) {
		m := callAdmin(t, s.admin+"/metrics").raw
		slow := max(0, metricValue(m, `messageapi_sse_dropped_total{reason="slow"}`))
		write := max(0, metricValue(m, `messageapi_sse_dropped_total{reason="write"}`))
		clients := metricValue(m, "messageapi_sse_clients")
		return slow+write >= 1 && clients == 1, fmt.Sprintf("dropped: %v slow, %v write; %v clients", slow, write, clients)
	})
	after := rss(t, s.api)
	t.Logf("API RSS %d MiB before the stalled client fell behind, %d MiB after", before>>20, after>>20)
	if after-before > 64<<20 {
		t.Errorf("the API grew by %d MiB while a client stalled", (after-before)>>20)
	}
	if healthy.ended() {
		t.Error("the healthy client was cut off too")
	}
}

// TestLiveEventsAcrossARedisRestart: when Redis comes back empty, the
// feed's history is gone, so connected clients get a reset event (they
// refetch), and events flow again afterwards.
func TestLiveEventsAcrossARedisRestart(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	s := startStack(t, "REDIS_URL="+rs.url())
	c := openEvents(t, s.base+"/events", "")
	m1 := s.createMessage(t, "before")
	expect(t, s.post(t, "/messages/"+m1+"/reactions", `{"type": "like", "user_id": "bob"}`), 201)
	eventually(t, 10*time.Second, func() (bool, string) {
		n := len(c.received())
		return n == 2, fmt.Sprintf("%d events", n)
	})
	rs.stop()
	rs.start() // empty
	eventually(t, 20*time.Second, func() (bool, string) {
		got := c.received()
		return got[len(got)-1].Type == "reset", "last event: " + got[len(got)-1].Type
	})
	m2 := s.createMessage(t, "after")
	expect(t, s.post(t, "/messages/"+m2+"/reactions", `{"type": "love", "user_id": "carol"}`), 201)
	eventually(t, 20*time.Second, func() (bool, string) {
		var types []string
		for _, e := range c.received()[3:] {
			types = append(types, e.Type)
		}
		sort.Strings(types)
		return fmt.Sprint(types) == "[message.new reaction.new]", fmt.Sprint(types)
	})
	if c.ended() {
		t.Error("the stream ended; it should have carried on after the reset")
	}
}
