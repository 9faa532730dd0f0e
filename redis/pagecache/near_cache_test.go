package pagecache_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// twoProcesses returns two near caches on one key prefix, each on its own
// client, as two API processes would have, and waits until both listen.
func twoProcesses(t *testing.T, maxAge time.Duration) (a, b *pagecache.NearCache, pcA *pagecache.Cache, regA, regB *prometheus.Registry) {
	t.Helper()
	regA, regB = prometheus.NewRegistry(), prometheus.NewRegistry()
	ca := redistest.Open(t, redis.Config{Registerer: regA})
	cb := redistest.Open(t, redis.Config{Prefix: ca.Prefix(), Registerer: regB})
	cfg := pagecache.Config{Pages: 3, PageSize: 2, TTL: time.Minute}
	pcA = pagecache.New(ca, cfg)
	a = pagecache.NewNearCache(pcA, pagecache.NearCacheConfig{MaxAge: maxAge})
	b = pagecache.NewNearCache(pagecache.New(cb, cfg), pagecache.NearCacheConfig{MaxAge: maxAge})
	ctx, cancel := context.WithCancel(context.Background())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); a.Run(ctx) }()
	go func() { defer close(doneB); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-doneA; <-doneB })
	for !a.Live() || !b.Live() {
		time.Sleep(time.Millisecond)
	}
	return a, b, pcA, regA, regB
}

// drops returns how many announcements emptied the near cache whose
// client has the registry reg.
func drops(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "messageapi_near_cache_drops_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// loader serves the newest views of a list that the test grows, and counts
// its calls: a call means the read missed both caches.
type loader struct {
	newest []messageapi.MessageView
	calls  int
}

func (l *loader) load(_ context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
	l.calls++
	out := make([]messageapi.EncodedView, 0, r.Limit)
	for _, v := range l.newest[min(r.Offset, len(l.newest)):min(r.Offset+r.Limit, len(l.newest))] {
		e, err := v.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func TestNearCacheServesFromMemoryUntilAChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, pcA, _, _ := twoProcesses(t, time.Minute)
	all := views(6)
	l := &loader{newest: newestFirst(all[:5])}
	first := messageapi.MessageRange{Limit: 2}
	read := func(n *pagecache.NearCache) string {
		t.Helper()
		vs, err := n.Latest(ctx, first, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	if got := read(a); got != "[m4 m3]" {
		t.Fatalf("first read = %s", got)
	}
	read(b)
	hits := func() (int, string) { return l.calls, read(a) + read(b) }
	calls, _ := hits()
	if c, got := hits(); c != calls || got != "[m4 m3][m4 m3]" {
		t.Fatalf("warm reads: %d loads (want %d), pages %s", c, calls, got)
	}

	// A new message through a: a reads it at once, b within pub/sub time.
	l.newest = newestFirst(all)
	if err := a.AddMessage(ctx, all[5]); err != nil {
		t.Fatal(err)
	}
	if got := read(a); got != "[m5 m4]" {
		t.Errorf("the writer's page right after its write = %s", got)
	}
	deadline := time.Now().Add(time.Second)
	for read(b) != "[m5 m4]" {
		if time.Now().After(deadline) {
			t.Fatal("b still serves the old page a second after the change")
		}
		time.Sleep(time.Millisecond)
	}

	// A view refreshed by the projection reaches both.
	v := all[4]
	v.ReactionCount, v.ReactionCounts, v.ReactionScores, v.Version = 1, map[string]int64{"like": 1}, map[string]int64{"like": 1}, 1
	if _, err := pcA.RefreshViews(ctx, []messageapi.MessageView{v}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*pagecache.NearCache{a, b} {
		deadline := time.Now().Add(time.Second)
		for {
			vs, err := n.Latest(ctx, first, l.load)
			if err != nil {
				t.Fatal(err)
			}
			if decode(vs[1]).ReactionCount == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a refreshed view did not reach a near cache within a second")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestNearCacheMaxAge: a change no announcement told of (written behind
// the cache's back) is served from memory only until the maximum age.
func TestNearCacheMaxAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxAge = 300 * time.Millisecond
	a, _, pcA, reg, _ := twoProcesses(t, maxAge)
	all := views(3)
	l := &loader{newest: newestFirst(all)}
	r := messageapi.MessageRange{Limit: 2}
	read := func() string {
		t.Helper()
		vs, err := a.Latest(ctx, r, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	read()                  // fills Redis, which announces it
	for drops(t, reg) < 1 { // the announcement has emptied the near cache
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	read() // fills the near cache
	changed := all[2]
	changed.Text = "edited"
	e, err := changed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcA.Client().Redis().HSet(ctx, pcA.EntryKey(changed.ID), "v", 99, "d", e.JSON).Err(); err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < maxAge/2 {
		if got := read(); got != "[m2 m1]" {
			t.Fatalf("%v after the read: %s; the near cache should still serve its page", time.Since(start), got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(maxAge)
	if got := read(); got != "[edited m1]" {
		t.Errorf("past the maximum age: %s, want the page as Redis holds it", got)
	}
}
