package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// nearCacheBound is how long another API process may serve a page it
// holds in memory after a change: pub/sub delivery, in practice a few
// milliseconds, with slack for a loaded test machine. The test runs the
// near caches with a maximum age far above it, so only the announcements
// (and dropping everything while they may be lost) keep pages fresh.
const nearCacheBound = time.Second

// firstText returns the text of the newest message of base's first page.
func firstText(t *testing.T, base string) string {
	t.Helper()
	r := call(t, "GET", base+"/messages?limit=1", "", "")
	ms, _ := r.body["messages"].([]any)
	if r.status != 200 || len(ms) == 0 {
		return ""
	}
	return ms[0].(map[string]any)["text"].(string)
}

// visibleWithin polls base's first page until it shows text, and returns
// how long that took; it fails the test past bound.
func visibleWithin(t *testing.T, base, text string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if firstText(t, base) == text {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s still served a page without %q after %v", base, text, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// nearHits returns the near cache's hit count of an API process.
func nearHits(t *testing.T, admin string) float64 {
	t.Helper()
	return metricValue(callAdmin(t, admin+"/metrics").raw, `messageapi_near_cache_requests_total{result="hit"}`)
}

// TestNearCacheAcrossAPIProcesses: two API processes serve the first page
// from memory; a message posted through one is on its own page at once and
// on the other's within the bound; a reaction's counts reach both; and
// after the subscriptions are killed (CLIENT KILL TYPE pubsub) or Redis
// restarts empty, neither serves a page staler than the bound.
func TestNearCacheAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	s := startStack(t, "REDIS_URL="+rs.url(), "NEAR_CACHE_MAX_AGE=1m")
	b := startProc(t, "api", s.env)
	b.waitReady()
	baseB, adminB := "http://"+b.addr("api"), "http://"+b.addr("admin")
	rdb := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(rs.url(), "/0"), "redis://")})
	defer rdb.Close()

	post := func(text string) string {
		t.Helper()
		return s.createMessage(t, text)
	}
	post("first")
	for _, base := range []string{s.base, baseB} { // both hold page 1 in memory
		eventually(t, 5*time.Second, func() (bool, string) { return firstText(t, base) == "first", firstText(t, base) })
		firstText(t, base)
	}
	if nearHits(t, s.admin) < 1 || nearHits(t, adminB) < 1 {
		t.Fatalf("the near caches served no page: %v and %v hits", nearHits(t, s.admin), nearHits(t, adminB))
	}

	// Through A: at once on A, within the bound on B.
	post("second")
	if got := firstText(t, s.base); got != "second" {
		t.Errorf("the writer's own API served %q right after the write", got)
	}
	took := visibleWithin(t, baseB, "second", nearCacheBound)
	t.Logf("a message posted through one API process reached the other's page in %v", took)

	// A reaction's projected counts reach both.
	m := post("reacted")
	visibleWithin(t, baseB, "reacted", nearCacheBound)
	expect(t, s.post(t, "/messages/"+m+"/reactions", `{"type": "like", "user_id": "bob", "score": 3}`), 201)
	for _, base := range []string{s.base, baseB} {
		eventually(t, 5*time.Second, func() (bool, string) {
			r := call(t, "GET", base+"/messages?limit=1", "", "")
			first := r.body["messages"].([]any)[0].(map[string]any)
			return fmt.Sprint(first["reaction_count"]) == "1", fmt.Sprintf("%s: %v", base, first["reaction_count"])
		})
	}

	// The subscriptions are cut: a change made meanwhile is not missed.
	if err := rdb.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	post("after the kill")
	visibleWithin(t, baseB, "after the kill", nearCacheBound)
	eventually(t, 10*time.Second, func() (bool, string) { // both subscribe again
		a, b := metricValue(callAdmin(t, s.admin+"/metrics").raw, "messageapi_near_cache_live"),
			metricValue(callAdmin(t, adminB+"/metrics").raw, "messageapi_near_cache_live")
		return a == 1 && b == 1, fmt.Sprintf("live: %v and %v", a, b)
	})
	post("after resubscribing")
	visibleWithin(t, baseB, "after resubscribing", nearCacheBound)

	// Redis restarts empty: the near caches hold nothing stale after it.
	for _, base := range []string{s.base, baseB} {
		firstText(t, base)
	}
	rs.stop()
	rs.start()
	post("after the restart")
	if got := firstText(t, s.base); got != "after the restart" {
		t.Errorf("the writer's own API served %q right after the write", got)
	}
	visibleWithin(t, baseB, "after the restart", nearCacheBound)
}
