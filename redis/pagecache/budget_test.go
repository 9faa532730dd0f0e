package pagecache_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// manyChannels is a channelLoader of channels c0, c1... of n messages
// each, and a reader of their first pages.
type manyChannels struct {
	t   *testing.T
	l   *channelLoader
	all map[string][]messageapi.MessageView // oldest first
}

func newManyChannels(t *testing.T, channels, n int) *manyChannels {
	m := &manyChannels{t: t, l: &channelLoader{newest: map[string][]messageapi.MessageView{}, calls: map[string]int{}},
		all: map[string][]messageapi.MessageView{}}
	for i := range channels {
		m.add(fmt.Sprintf("c%d", i), n)
	}
	return m
}

func (m *manyChannels) add(channel string, n int) {
	m.all[channel] = inChannel(channel, n)
	m.l.newest[channel] = newestFirst(m.all[channel])
}

// read reads the first page (limit views) of channel through pc.
func (m *manyChannels) read(pc *pagecache.Cache, channel string, limit int) string {
	m.t.Helper()
	vs, err := pc.Latest(context.Background(), messageapi.MessageRange{ChannelID: channel, Limit: limit}, m.l.load)
	if err != nil {
		m.t.Fatal(err)
	}
	return texts(vs)
}

func account(t *testing.T, pc *pagecache.Cache) {
	t.Helper()
	if err := pc.Account(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the accounting's clock counts milliseconds
}

// indexed reports whether Redis holds an index of channel.
func indexed(t *testing.T, c *redis.Client, channel string) bool {
	t.Helper()
	n, err := c.Redis().Exists(context.Background(), c.Key("cache:"+channel, ":latest:state")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestPageCacheKeepsChannelsWithinTheBudget: a channel read once stays
// cached while a process reads 1,000 other small channels, when the
// budget holds them all; so does every one of them.
func TestPageCacheKeepsChannelsWithinTheBudget(t *testing.T) {
	t.Parallel()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{TTL: time.Minute}) // the default budget
	m := newManyChannels(t, 1000, 2)
	m.add("hot", 30)
	if got := m.read(pc, "hot", 11); got != texts(m.l.newest["hot"][:11]) {
		t.Fatalf("page 1 of hot = %s", got)
	}
	for i := range 1000 {
		ch := "c" + strconv.Itoa(i)
		if got := m.read(pc, ch, 11); got != fmt.Sprintf("[%s1 %s0]", ch, ch) {
			t.Fatalf("page 1 of %s = %s", ch, got)
		}
		if i%100 == 0 {
			account(t, pc)
		}
	}
	account(t, pc)
	loads := m.l.calls["hot"]
	if got := m.read(pc, "hot", 11); got != texts(m.l.newest["hot"][:11]) || m.l.calls["hot"] != loads {
		t.Fatalf("page 1 of hot after 1,000 other channels = %s with %d more loads; want it from Redis", got, m.l.calls["hot"]-loads)
	}
	for i := range 1000 {
		if ch := "c" + strconv.Itoa(i); !indexed(t, c, ch) {
			t.Fatalf("%s is no longer cached", ch)
		}
	}
}

// TestPageCacheEvictsPastTheBudget: past the byte budget, the channels
// read least recently lose their index and entries, whichever process
// built them; pages stay exact across the eviction and the rebuild.
func TestPageCacheEvictsPastTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := redistest.NewClient(t)
	cb := redistest.Open(t, redis.Config{Prefix: ca.Prefix()})
	m := newManyChannels(t, 30, 5)

	// Learn what a channel takes, with a budget that holds everything.
	probe := pagecache.New(ca, pagecache.Config{TTL: time.Minute})
	m.read(probe, "c29", 6)
	account(t, probe)
	size, err := ca.Redis().HGet(ctx, ca.Key("cache-budget", ":sizes"), "c29").Int()
	if err != nil || size < 1000 {
		t.Fatalf("c29 is accounted with %d bytes, %v", size, err)
	}

	// Two processes with a budget of about 8 such channels.
	budget := 8*size + size/2
	cfg := pagecache.Config{Bytes: budget, TTL: time.Minute}
	a, b := pagecache.New(ca, cfg), pagecache.New(cb, cfg)
	m.read(a, "c0", 6) // built by a
	account(t, a)
	for i := 1; i < 29; i++ {
		m.read(b, "c"+strconv.Itoa(i), 6)
		account(t, b)
	}
	total, err := ca.Redis().Get(ctx, ca.Key("cache-budget", ":total")).Int()
	if err != nil || total > budget {
		t.Fatalf("accounted total %d (%v) over the budget %d", total, err, budget)
	}
	var cached []string
	for i := range 30 {
		if ch := "c" + strconv.Itoa(i); indexed(t, ca, ch) {
			cached = append(cached, ch)
		}
	}
	if fmt.Sprint(cached) != "[c21 c22 c23 c24 c25 c26 c27 c28]" {
		t.Fatalf("channels cached = %v; want the 8 read last", cached)
	}
	if keys, err := ca.Redis().Keys(ctx, ca.Key("cache:c0", "*")).Result(); err != nil || len(keys) != 0 {
		t.Fatalf("keys of c0, evicted by the other process: %v, %v", keys, err)
	}

	// While c0 is not cached, a message is created in it and another one
	// gains a reaction: a's next read rebuilds it with both.
	fresh := inChannel("c0", 1)[0]
	fresh.Text = "fresh"
	liked := m.all["c0"][4]
	liked.Version, liked.ReactionCount, liked.ReactionCounts, liked.ReactionScores = 1, 1, map[string]int64{"like": 1}, map[string]int64{"like": 1}
	m.l.newest["c0"] = append([]messageapi.MessageView{fresh, liked}, m.l.newest["c0"][1:]...)
	if err := a.AddMessage(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if n, err := b.RefreshViews(ctx, []messageapi.MessageView{liked}); err != nil || n != 0 {
		t.Fatalf("refresh of an evicted channel wrote %d entries, %v; want none", n, err)
	}
	if keys, err := ca.Redis().Keys(ctx, ca.Key("cache:c0", "*")).Result(); err != nil || len(keys) != 0 {
		t.Fatalf("writes to evicted c0 left keys: %v, %v", keys, err)
	}
	loads := m.l.calls["c0"]
	if got := m.read(a, "c0", 6); got != "[fresh c04 c03 c02 c01 c00]" || m.l.calls["c0"] != loads+1 {
		t.Fatalf("c0 read again = %s after %d loads; want [fresh c04 c03 c02 c01 c00] rebuilt", got, m.l.calls["c0"]-loads)
	}
	vs, hit, err := b.ChannelPage(ctx, "c0", 0, 6)
	if err != nil || !hit || decode(vs[1]).ReactionCount != 1 {
		t.Fatalf("c0's rebuilt index = %s, hit %v, %v; want c04 with its reaction", texts(vs), hit, err)
	}
	// The rebuilt index takes writes again, under the same rules: a
	// write-through, a newer view, and not an older one.
	fresher := inChannel("c0", 1)[0]
	fresher.Text = "fresher"
	if err := b.AddMessage(ctx, fresher); err != nil {
		t.Fatal(err)
	}
	liked2 := liked
	liked2.Version, liked2.ReactionCount = 2, 2
	liked2.ReactionCounts, liked2.ReactionScores = map[string]int64{"like": 2}, map[string]int64{"like": 2}
	if n, err := b.RefreshViews(ctx, []messageapi.MessageView{liked2}); err != nil || n != 1 {
		t.Fatalf("refresh of the rebuilt index wrote %d, %v; want 1", n, err)
	}
	if n, err := a.RefreshViews(ctx, []messageapi.MessageView{liked}); err != nil || n != 0 {
		t.Fatalf("an older view was written over the newer one: %d, %v", n, err)
	}
	vs, hit, err = a.ChannelPage(ctx, "c0", 0, 3)
	if err != nil || !hit || texts(vs) != "[fresher fresh c04]" || decode(vs[2]).ReactionCount != 2 {
		t.Fatalf("c0's index after the writes = %s, hit %v, %v; want [fresher fresh c04] with 2 reactions on c04", texts(vs), hit, err)
	}

	// Reading c0 made it the most recently read: the next channel built
	// pushes out the least recently read one, c21, not c0.
	account(t, a)
	m.read(b, "c29", 6)
	account(t, b)
	if !indexed(t, ca, "c0") || indexed(t, ca, "c21") || !indexed(t, ca, "c29") {
		t.Fatalf("after c29: c0 cached %v, c21 %v, c29 %v; want c21 out", indexed(t, ca, "c0"), indexed(t, ca, "c21"), indexed(t, ca, "c29"))
	}
}

// TestNearCacheKeepsPagesWithinItsBytes: the near cache holds the pages
// read most recently, within its bytes, and drops the oldest first.
func TestNearCacheKeepsPagesWithinItsBytes(t *testing.T) {
	t.Parallel()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{TTL: time.Minute})
	m := newManyChannels(t, 50, 3)
	// Build the channels' indexes first, so that the announcements of the
	// rebuilds do not drop pages of the near caches below.
	for i := range 50 {
		m.read(pc, "c"+strconv.Itoa(i), 4)
	}
	time.Sleep(100 * time.Millisecond)
	start := func(cfg pagecache.NearCacheConfig) *pagecache.NearCache {
		nc := pagecache.NewNearCache(pc, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); nc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		for !nc.Live() {
			time.Sleep(time.Millisecond)
		}
		return nc
	}
	read := func(nc *pagecache.NearCache, ch string) {
		t.Helper()
		if _, err := nc.Latest(context.Background(), messageapi.MessageRange{ChannelID: ch, Limit: 4}, m.l.load); err != nil {
			t.Fatal(err)
		}
	}
	probe := start(pagecache.NearCacheConfig{MaxAge: time.Minute})
	read(probe, "c0")
	_, page := probe.NearHeld()
	// A near cache of room for about 10 such pages.
	n := start(pagecache.NearCacheConfig{MaxAge: time.Minute, Bytes: 10*page + page/2})
	for i := range 50 {
		read(n, "c"+strconv.Itoa(i))
	}
	pages, bytes := n.NearHeld()
	if pages != 10 || bytes > 10*page+page/2 {
		t.Fatalf("the near cache holds %d pages of %d bytes; want 10 within %d", pages, bytes, 10*page+page/2)
	}
	for i := range 50 {
		if held, want := n.Holds("c"+strconv.Itoa(i), 4), i >= 40; held != want {
			t.Fatalf("page of c%d held: %v; want the 10 read last", i, held)
		}
	}
}

// TestPageCacheOnRedisCluster: rebuilds, extensions, the accounting and
// evictions each touch one slot, so they work on a Redis Cluster, whose
// slots the channels spread over.
func TestPageCacheOnRedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster := redistest.StartCluster(t)
	c, err := redis.Open(redis.Config{ClusterAddrs: cluster.Addrs(), Prefix: redistest.NewPrefix(t), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	m := newManyChannels(t, 20, 30)
	probe := pagecache.New(c, pagecache.Config{PageSize: 10, TTL: time.Minute})
	m.read(probe, "c19", 11)
	account(t, probe)
	size, err := c.Redis().HGet(ctx, c.Key("cache-budget", ":sizes"), "c19").Int()
	if err != nil || size < 1000 {
		t.Fatalf("c19 is accounted with %d bytes, %v", size, err)
	}
	// Room for about 5 channels of two pages.
	pc := pagecache.New(c, pagecache.Config{PageSize: 10, Bytes: 5 * 2 * size, TTL: time.Minute})
	for i := range 20 {
		ch := "c" + strconv.Itoa(i)
		for page := range 2 {
			vs, err := pc.Latest(ctx, messageapi.MessageRange{ChannelID: ch, Offset: 10 * page, Limit: 11}, m.l.load)
			if want := texts(m.l.newest[ch][10*page : 10*page+11]); err != nil || texts(vs) != want {
				t.Fatalf("page %d of %s = %s, %v; want %s", page+1, ch, texts(vs), err, want)
			}
		}
		account(t, pc)
	}
	for i := range 20 {
		ch := "c" + strconv.Itoa(i)
		vs, hit, err := pc.ChannelPage(ctx, ch, 10, 11)
		switch {
		case err != nil:
			t.Fatal(err)
		case i < 14 && hit:
			t.Errorf("%s, read long ago, is still cached", ch)
		case i >= 16 && (!hit || texts(vs) != texts(m.l.newest[ch][10:21])):
			t.Errorf("page 2 of %s, read lately = %s, hit %v; want %s", ch, texts(vs), hit, texts(m.l.newest[ch][10:21]))
		}
	}
}
