package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi/postgres/postgrestest"
)

// proxiedSchema returns a new schema's URL that goes through a proxy the
// test can cut, and the proxy.
func proxiedSchema(t *testing.T) (*tcpProxy, string) {
	t.Helper()
	direct := postgrestest.NewSchema(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	return proxy, u.String()
}

// createMessage posts a message and returns its id.
func (s *stack) createMessage(t *testing.T, text string) string {
	t.Helper()
	id, _ := s.createMessageTimed(t, text)
	return id
}

// createMessageTimed posts a message and returns its id and how long the
// API took to answer it.
func (s *stack) createMessageTimed(t *testing.T, text string) (string, time.Duration) {
	t.Helper()
	r := expect(t, s.post(t, "/messages", `{"text": "`+text+`", "user_id": "author"}`), 201)
	return r.body["id"].(string), r.took
}

// pageTexts returns the texts of GET /messages?<query>, newest first.
func (s *stack) pageTexts(t *testing.T, query string) []string {
	t.Helper()
	r := expect(t, s.get(t, "/messages?"+query), 200)
	var texts []string
	for _, m := range r.body["messages"].([]any) {
		texts = append(texts, m.(map[string]any)["text"].(string))
	}
	return texts
}

// TestRedisOutage: with Redis gone, writes succeed and reads come from
// PostgreSQL; when Redis comes back empty (stream, group and cache lost),
// counts converge through the sweeper and the cache does not serve a page
// that lacks the messages written meanwhile.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	s := startStack(t, "REDIS_URL="+rs.url(), "SWEEP_MIN_AGE=300ms", "SWEEP_INTERVAL=100ms")
	m1 := s.createMessage(t, "before")
	expect(t, s.post(t, "/messages/"+m1+"/reactions", `{"type": "like", "user_id": "bob", "score": 2}`), 201)
	s.waitFor(t, "/messages/"+m1, map[string]any{"reaction_count": 1})
	if got := s.pageTexts(t, ""); fmt.Sprint(got) != "[before]" { // fills the cache
		t.Fatalf("first page = %v", got)
	}

	rs.stop()
	m2, took := s.createMessageTimed(t, "during")
	expect(t, s.post(t, "/messages/"+m1+"/reactions", `{"type": "love", "user_id": "carol", "score": 3}`), 201)
	expect(t, s.post(t, "/messages/"+m1+"/reactions", `{"type": "like", "user_id": "bob", "score": 7}`), 200)
	expect(t, s.post(t, "/messages/"+m2+"/reactions", `{"type": "clap", "user_id": "dave"}`), 201)
	if got := s.pageTexts(t, ""); fmt.Sprint(got) != "[during before]" {
		t.Errorf("first page during the outage = %v, want both messages from PostgreSQL", got)
	}
	want(t, expect(t, s.get(t, "/messages/"+m2), 200), map[string]any{"text": "during"})
	expect(t, callAdmin(t, s.admin+"/healthz"), 200)
	expect(t, callAdmin(t, s.admin+"/readyz"), 503)
	t.Logf("a write while Redis was down took %v", took)

	rs.start() // empty: stream, consumer group and cache are gone
	s.waitFor(t, "/messages/"+m1, map[string]any{
		"reaction_count": 2, "reaction_counts.like": 1, "reaction_scores.like": 7, "reaction_scores.love": 3,
	})
	s.waitFor(t, "/messages/"+m2, map[string]any{"reaction_count": 1, "reaction_counts.clap": 1})
	s.waitFor(t, "/messages", map[string]any{
		"#messages": 2, "messages.0.text": "during", "messages.0.reaction_count": 1, "messages.1.reaction_count": 2,
	})
	s.createMessage(t, "after")
	if got := s.pageTexts(t, ""); fmt.Sprint(got) != "[after during before]" {
		t.Errorf("first page after recovery = %v", got)
	}
}

// TestRedisStallDoesNotStallWrites freezes Redis (connections open, no
// answers): after a few timeouts the circuit breaker opens and writes stop
// waiting for Redis. When Redis answers again, the cached index, which
// missed those writes, is dropped rather than served.
func TestRedisStallDoesNotStallWrites(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	s := startStack(t, "REDIS_URL="+rs.url(), "REDIS_TIMEOUT=1s")
	s.createMessage(t, "m0")
	if got := s.pageTexts(t, ""); fmt.Sprint(got) != "[m0]" { // fills the cache
		t.Fatalf("first page = %v", got)
	}
	rs.pause()
	var durations []time.Duration
	var openSince time.Time
	for i := 1; i <= 30; i++ {
		if i == 11 {
			openSince = time.Now()
		}
		_, took := s.createMessageTimed(t, fmt.Sprintf("m%d", i))
		durations = append(durations, took)
	}
	t.Logf("write latencies while Redis was frozen: %v", durations)
	// With the breaker open, one call a second goes through to probe
	// Redis and waits for its timeout; every other write is fast. So at
	// most one write per second spent outside such probes is slow.
	var slow []int
	var probing time.Duration
	for i, d := range durations[10:] {
		if d > 500*time.Millisecond {
			slow, probing = append(slow, i+11), probing+d
		}
	}
	if probes := 1 + int((time.Since(openSince)-probing)/time.Second); len(slow) > probes {
		t.Errorf("writes %v took over 500ms with the breaker open; at most %d may (one probe of Redis a second)", slow, probes)
	}
	rs.resume()
	got := s.pageTexts(t, "limit=31")
	if len(got) != 31 || got[0] != "m30" || got[30] != "m0" {
		t.Errorf("first page after the stall = %v, want m30..m0", got)
	}
}

// TestPostgresOutage cuts the API and worker off PostgreSQL: writes give
// 503 with Retry-After and no driver text, cached pages are still served,
// other reads give 503, /readyz fails while /healthz stays up, and writes
// work again within seconds of the database returning, with no restart.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	proxy, databaseURL := proxiedSchema(t)
	s := startStack(t, "DATABASE_URL="+databaseURL)
	m := s.createMessage(t, "kept")
	expect(t, s.post(t, "/messages/"+m+"/reactions", `{"type": "like", "user_id": "bob"}`), 201)
	s.waitFor(t, "/messages", map[string]any{"messages.0.reaction_count": 1}) // cached, with its counts

	proxy.cut()
	for _, r := range []reply{
		s.post(t, "/messages", `{"text": "lost?", "user_id": "alice"}`),
		s.post(t, "/messages/"+m+"/reactions", `{"type": "love", "user_id": "carol"}`),
		s.del(t, "/messages/"+m+"/reactions/like?user_id=bob"),
		s.get(t, "/messages/"+m),
		s.get(t, "/messages?limit=100&page=6"), // beyond the cached range (501 messages)
		s.get(t, "/messages/"+m+"/reactions"),
	} {
		expectError(t, r, 503, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After: %s", r.raw)
		}
		for _, leak := range []string{"dial", "connect", "127.0.0.1", "pgx", "pgconn", "EOF", "closed"} {
			if strings.Contains(r.raw, leak) {
				t.Errorf("503 body leaks driver text %q: %s", leak, r.raw)
			}
		}
	}
	want(t, expect(t, s.get(t, "/messages"), 200), map[string]any{"#messages": 1, "messages.0.text": "kept", "messages.0.reaction_count": 1})
	expect(t, callAdmin(t, s.admin+"/healthz"), 200)
	expect(t, callAdmin(t, s.admin+"/readyz"), 503)
	expect(t, callAdmin(t, "http://"+s.worker.addr("admin")+"/readyz"), 503)

	proxy.open()
	restored := time.Now()
	eventually(t, 15*time.Second, func() (bool, string) {
		r := s.post(t, "/messages", `{"text": "back", "user_id": "alice"}`)
		return r.status == 201, r.raw
	})
	t.Logf("writes succeeded %v after PostgreSQL returned", time.Since(restored).Round(time.Millisecond))
	expect(t, s.post(t, "/messages/"+m+"/reactions", `{"type": "love", "user_id": "carol"}`), 201)
	s.waitFor(t, "/messages/"+m, map[string]any{"reaction_count": 2})
	s.api.waitReady()
	s.worker.waitReady()
}

// TestStartWithDependenciesDown starts both programs while PostgreSQL and
// Redis are unreachable: they run, report not ready, and become ready and
// useful when the dependencies appear.
func TestStartWithDependenciesDown(t *testing.T) {
	t.Parallel()
	proxy, databaseURL := proxiedSchema(t)
	proxy.cut()
	rs := startRedisServer(t)
	rs.stop()
	s := launchStack(t, "DATABASE_URL="+databaseURL, "REDIS_URL="+rs.url())

	expect(t, callAdmin(t, s.admin+"/healthz"), 200)
	expect(t, callAdmin(t, s.admin+"/readyz"), 503)
	expect(t, callAdmin(t, "http://"+s.worker.addr("admin")+"/readyz"), 503)
	expectError(t, s.get(t, "/messages"), 503, "unavailable")

	proxy.open()
	rs.start()
	s.api.waitReady()
	s.worker.waitReady()
	m := s.createMessage(t, "late start")
	expect(t, s.post(t, "/messages/"+m+"/reactions", `{"type": "like", "user_id": "bob"}`), 201)
	s.waitFor(t, "/messages/"+m, map[string]any{"reaction_count": 1})
}

// TestWorkersKilledAndRestartedUnderTraffic writes reactions from several
// clients while workers are killed with SIGKILL mid-batch and restarted,
// and stopped gracefully and replaced. Every acknowledged write must end up
// in PostgreSQL, and every view must equal the aggregate of those writes:
// nothing lost, nothing counted twice.
func TestWorkersKilledAndRestartedUnderTraffic(t *testing.T) {
	t.Parallel()
	s := startStack(t, "CLAIM_MIN_IDLE=1s", "FOLD_TIMEOUT=800ms", "CLAIM_INTERVAL=200ms", "SWEEP_MIN_AGE=2s", "SWEEP_INTERVAL=200ms", "BATCH_SIZE=50")
	tr := startTraffic(t, s, 8, 6)

	// Meanwhile: SIGKILL the worker, start two, stop one gracefully,
	// SIGKILL the other, start a last one.
	tr.pause(time.Second)
	s.worker.kill()
	w2 := startProc(t, "worker", s.env)
	w3 := startProc(t, "worker", s.env)
	tr.pause(1500 * time.Millisecond)
	if err := w2.stop(); err != nil {
		t.Errorf("graceful stop of a worker under traffic: %v", err)
	}
	tr.pause(time.Second)
	w3.kill()
	startProc(t, "worker", s.env)
	tr.pause(1500 * time.Millisecond)
	if writes, failures := tr.stop(); failures > 0 {
		t.Fatalf("%d of %d writes failed", failures, writes)
	}
	tr.verify(t)
}

// databaseURLOf returns the DATABASE_URL in env (the last one wins).
func databaseURLOf(env []string) string {
	var u string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			u = v
		}
	}
	return u
}

// TestCachedPagesRepairAfterARedisStall: Redis freezes while a reaction is
// written; the worker folds it (the sweeper finds it, since its stream
// entry could not be appended) but cannot refresh the cached page. Within
// two seconds of Redis answering again, the page shows the reaction.
func TestCachedPagesRepairAfterARedisStall(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	s := startStack(t, "REDIS_URL="+rs.url(), "SWEEP_MIN_AGE=300ms", "SWEEP_INTERVAL=100ms", "REDIS_TIMEOUT=200ms")
	m := s.createMessage(t, "stalled")
	s.waitFor(t, "/messages", map[string]any{"messages.0.id": m, "messages.0.reaction_count": 0}) // cached

	rs.pause()
	expect(t, s.post(t, "/messages/"+m+"/reactions", `{"type": "like", "user_id": "bob", "score": 4}`), 201)
	s.waitFor(t, "/messages/"+m, map[string]any{"reaction_count": 1}) // folded, from PostgreSQL
	// The fold's cache refresh failed meanwhile: wait until the worker says so.
	worker := "http://" + s.worker.addr("admin") + "/metrics"
	eventually(t, 15*time.Second, func() (bool, string) {
		r, err := exchange(http.MethodGet, worker, http.Header{}, "", false)
		return err == nil && metricValue(r.raw, "messageapi_projection_cache_errors_total") >= 1, "no failed refresh yet"
	})
	rs.resume()
	resumed := time.Now()
	s.waitFor(t, "/messages", map[string]any{"messages.0.id": m, "messages.0.reaction_count": 1, "messages.0.reaction_scores.like": 4})
	if took := time.Since(resumed); took > 2*time.Second {
		t.Errorf("the cached page showed the reaction %v after Redis returned, want within 2s", took)
	} else {
		t.Logf("the cached page was right %v after Redis returned", took.Round(time.Millisecond))
	}
}

// metricValue returns the value of an unlabelled metric in a Prometheus
// text exposition, or -1 when it is absent.
func metricValue(exposition, name string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// TestWritesBlockedOnALockDoNotDelayReads: with the reactions table locked,
// 64 reaction writes wait (and time out); reads of a message meanwhile come
// from a pool of their own and stay fast.
func TestWritesBlockedOnALockDoNotDelayReads(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	m := s.createMessage(t, "bulkhead")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURLOf(s.env))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `lock table reactions in exclusive mode`); err != nil { // reads still pass
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	statuses := make(chan int, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := try(http.MethodPost, s.base+"/messages/"+m+"/reactions", "application/json", fmt.Sprintf(`{"type":"like","user_id":"w%d"}`, i))
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.status
		}()
	}
	// Let the writers take their connections, then read. The watch runs on
	// a connection of its own: inside the locking transaction the activity
	// view would stay the snapshot it first showed.
	watch, err := pgx.Connect(ctx, databaseURLOf(s.env))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	eventually(t, 10*time.Second, func() (bool, string) {
		var waiting int
		err := watch.QueryRow(ctx, `select count(*) from pg_stat_activity
			where wait_event_type = 'Lock' and datname = current_database() and application_name = 'messageapi-api'`).Scan(&waiting)
		// The writes share transactions (group commit): each of the
		// API's committers (2) waits with a batch of them.
		return err == nil && waiting >= 2, fmt.Sprintf("%d sessions wait on a lock (%v)", waiting, err)
	})
	var slowest time.Duration
	for range 20 {
		slowest = max(slowest, expect(t, s.get(t, "/messages/"+m), 200).took)
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("the slowest of 20 reads took %v while writes waited on a lock; want well under the 2s the writes wait", slowest)
	}
	t.Logf("the slowest of 20 reads took %v while 64 writes waited on a lock", slowest.Round(time.Millisecond))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(statuses)
	for status := range statuses {
		if status != 201 && status != 503 {
			t.Errorf("a blocked write got %d, want 201 (after the lock) or 503", status)
		}
	}
}

// TestFrozenWorkerStopsNoOne freezes (SIGSTOP) one of two workers while it
// is inside a fold transaction, under load. PostgreSQL ends its idle
// transaction within a second, the other worker skips what it still holds
// meanwhile and folds everything else, and no write fails: the lag of a
// probe reaction on a hot message stays under a few seconds.
func TestFrozenWorkerStopsNoOne(t *testing.T) {
	t.Parallel()
	s := startStack(t, "CONSUMER=w1", "BATCH_SIZE=50")
	w2 := startProc(t, "worker", append(slices.Clone(s.env), "CONSUMER=w2"))
	w2.waitReady()
	messages := make([]string, 4)
	for i := range messages {
		messages[i] = s.createMessage(t, fmt.Sprintf("hot%d", i))
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var writes, failed atomic.Int64
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r, err := try(http.MethodPost, s.base+"/messages/"+messages[i%len(messages)]+"/reactions", "application/json",
					fmt.Sprintf(`{"type":"like","user_id":"c%d-u%d","score":%d}`, c, i%200, i%9+1))
				writes.Add(1)
				if err != nil || r.status >= 300 {
					failed.Add(1)
				}
			}
		}()
	}

	// Freeze w1 at a moment it is inside a transaction: find its session in
	// one, stop it, and check the session is still there, holding it.
	db, err := pgx.Connect(context.Background(), databaseURLOf(s.env))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	inTx := func() bool {
		var n int
		_ = db.QueryRow(context.Background(), `select count(*) from pg_stat_activity
			where application_name = 'messageapi-worker:w1' and xact_start is not null`).Scan(&n)
		return n > 0
	}
	frozen := false
	for attempt := 0; attempt < 2000 && !frozen; attempt++ {
		if inTx() {
			s.worker.freeze()
			if frozen = inTx(); !frozen {
				s.worker.thaw()
			}
		}
	}
	if !frozen {
		var names string
		_ = db.QueryRow(context.Background(), `select string_agg(distinct application_name, ', ') from pg_stat_activity where datname = current_database()`).Scan(&names)
		t.Fatalf("never caught worker w1 inside a transaction; sessions: %s", names)
	}
	frozenAt := time.Now()

	// Probe: a reaction on a hot message, and how long until it is counted.
	var slowest time.Duration
	for i := 0; i < 10 || time.Since(frozenAt) < 4*time.Second; i++ {
		expect(t, s.post(t, "/messages/"+messages[0]+"/reactions", fmt.Sprintf(`{"type":"probe","user_id":"probe%d"}`, i)), 201)
		posted := time.Now()
		eventually(t, 30*time.Second, func() (bool, string) {
			v := s.get(t, "/messages/"+messages[0])
			return fmt.Sprint(field(v.body, "reaction_counts.probe")) == fmt.Sprint(i+1), v.raw
		})
		slowest = max(slowest, time.Since(posted))
	}
	frozenFor := time.Since(frozenAt)
	var ended int
	_ = db.QueryRow(context.Background(), `select count(*) from pg_stat_activity
		where application_name = 'messageapi-worker:w1' and xact_start is not null`).Scan(&ended)
	s.worker.thaw()
	stopLoad()
	wg.Wait()
	t.Logf("w1 frozen for %v: probe lag at most %v; %d of %d writes failed; w1 still in a transaction: %v",
		frozenFor.Round(time.Millisecond), slowest.Round(time.Millisecond), failed.Load(), writes.Load(), ended > 0)
	if slowest > 3*time.Second {
		t.Errorf("a probe reaction took %v to be counted while a worker was frozen; want under 3s", slowest)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d writes failed while a worker was frozen", failed.Load(), writes.Load())
	}
	if ended > 0 {
		t.Error("the frozen worker's transaction outlived the idle-in-transaction timeout")
	}
	// And nothing is lost or counted twice.
	rows, err := db.Query(context.Background(), `select message_id::text, count(*), sum(score) from reactions
		where deleted_at is null and type = 'like' group by message_id`)
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string][2]int64{}
	for rows.Next() {
		var id string
		var n, sum int64
		if err := rows.Scan(&id, &n, &sum); err != nil {
			t.Fatal(err)
		}
		truth[id] = [2]int64{n, sum}
	}
	for _, m := range messages {
		s.waitFor(t, "/messages/"+m, map[string]any{"reaction_counts.like": truth[m][0], "reaction_scores.like": truth[m][1]})
	}
}

// TestConnectionFloodFromOneAddress: one address opens far more
// connections than the API's open-file limit allows. The API refuses the
// excess at once, keeps descriptors for its own pools, and serves a client
// from another address as if nothing happened.
func TestConnectionFloodFromOneAddress(t *testing.T) {
	t.Parallel()
	env := stackEnv(t, "LOG_LEVEL=info")
	const files = 512
	s := newStack(t, env, startProcWithFiles(t, "api", files, env))
	s.api.waitReady()
	s.worker.waitReady()
	apiAddr := strings.TrimPrefix(s.base, "http://")
	rssBefore := rss(t, s.api)

	// The flood: 1,500 connections from 127.0.0.1, held open.
	flood := make([]net.Conn, 0, 1500)
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 2 * time.Second}
	for range cap(flood) {
		c, err := d.Dial("tcp", apiAddr)
		if err != nil {
			continue // the backlog is full: the flood is being refused
		}
		flood = append(flood, c)
	}

	// Another client, from 127.0.0.2.
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	for i := range 5 {
		start := time.Now()
		resp, err := other.Post(s.base+"/messages", "application/json", strings.NewReader(fmt.Sprintf(`{"text":"during the flood %d","user_id":"other"}`, i)))
		if err != nil {
			t.Fatalf("a client from another address could not write during the flood: %v", err)
		}
		resp.Body.Close()
		status, took := resp.StatusCode, time.Since(start)
		if status != http.StatusCreated || took > 2*time.Second {
			t.Errorf("a write from another address during the flood: %d in %v, want 201 within 2s", status, took)
		}
	}
	resp, err := other.Get(s.base + "/messages?limit=5")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a read from another address during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	rssAfter := rss(t, s.api)
	metrics := callAdmin(t, s.admin+"/metrics").raw
	t.Logf("%d flood connections opened; API RSS %d MiB before, %d MiB during; refused per client: %v",
		len(flood), rssBefore>>20, rssAfter>>20, metricValue(metrics, `messageapi_http_connections_refused_total{reason="per_client"}`))
	if rssAfter > 128<<20 {
		t.Errorf("API RSS grew to %d MiB under the flood", rssAfter>>20)
	}
}

// rss returns the resident memory of a running process in bytes.
func rss(t *testing.T, p *proc) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
