package pagecache_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"messageapi"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// channelLoader serves the newest views of each channel, as the store
// would, and counts its reads of each, and the views it served.
type channelLoader struct {
	mu     sync.Mutex
	newest map[string][]messageapi.MessageView
	calls  map[string]int
	served int
}

func (l *channelLoader) load(_ context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[r.Channel()]++
	vs := l.newest[r.Channel()]
	if r.BeforeID != "" {
		vs = slices.DeleteFunc(slices.Clone(vs), func(v messageapi.MessageView) bool { return v.ID >= r.BeforeID })
	}
	out := []messageapi.EncodedView{}
	for _, v := range vs[min(r.Offset, len(vs)):min(r.Offset+r.Limit, len(vs))] {
		e, err := v.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	l.served += len(out)
	return out, nil
}

// inChannel returns n views of channel, oldest first, texts "<channel><i>".
func inChannel(channel string, n int) []messageapi.MessageView {
	vs := views(n)
	for i := range vs {
		vs[i].ChannelID, vs[i].Text = channel, fmt.Sprintf("%s%d", channel, i)
	}
	return vs
}

func TestPageCacheCachesEachChannelReadRecently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{Pages: 3, ChannelPages: 2, PageSize: 2, Channels: 2, TTL: time.Minute})
	all := map[string][]messageapi.MessageView{"a": inChannel("a", 8), "b": inChannel("b", 3), "c": inChannel("c", 1)}
	l := &channelLoader{newest: map[string][]messageapi.MessageView{}, calls: map[string]int{}}
	for ch, vs := range all {
		l.newest[ch] = newestFirst(vs[:len(vs)-1])
	}
	read := func(ch string, r messageapi.MessageRange) string {
		t.Helper()
		r.ChannelID = ch
		vs, err := pc.Latest(ctx, r, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	first := messageapi.MessageRange{Limit: 2}

	// The first read builds the channel's index of just that page; the next
	// page extends it, reading only the messages it lacks; the next reads of
	// either are hits. The index goes down to ChannelPages pages (2 of 2, and
	// one id more) at most.
	if got := read("a", first); got != "[a6 a5]" || l.calls["a"] != 1 || l.served != 2 {
		t.Fatalf("page 1 of a = %s after %d loads of %d views; want [a6 a5] from one load of 2", got, l.calls["a"], l.served)
	}
	if got := read("a", messageapi.MessageRange{Offset: 2, Limit: 2}); got != "[a4 a3]" || l.calls["a"] != 2 || l.served != 4 {
		t.Fatalf("page 2 of a = %s after %d loads of %d views; want [a4 a3] from one more load of 2", got, l.calls["a"], l.served)
	}
	for _, r := range []messageapi.MessageRange{first, {Offset: 2, Limit: 2}, {Offset: 1, Limit: 3}} {
		if _, hit, err := pc.ChannelPage(ctx, "a", r.Offset, r.Limit); err != nil || !hit {
			t.Fatalf("page %+v of a after the extension: hit %v, %v", r, hit, err)
		}
	}
	if got := read("a", messageapi.MessageRange{Offset: 4, Limit: 2}); got != "[a2 a1]" || l.calls["a"] != 3 {
		t.Fatalf("page 3 of a = %s after %d loads; want [a2 a1] from PostgreSQL, past the channel's 2 pages", got, l.calls["a"])
	}
	if got := read("b", first); got != "[b1 b0]" {
		t.Fatalf("page 1 of b = %s", got)
	}

	// A message written through reaches its channel's pages only.
	for _, ch := range []string{"a", "b"} {
		newest := all[ch][len(all[ch])-1]
		l.newest[ch] = newestFirst(all[ch])
		if err := pc.AddMessage(ctx, newest); err != nil {
			t.Fatal(err)
		}
	}
	loads := l.calls["a"] + l.calls["b"]
	if got := read("a", messageapi.MessageRange{BeforeID: all["a"][6].ID, Limit: 2}); got != "[a5 a4]" || l.calls["a"]+l.calls["b"] != loads {
		t.Fatalf("cursor page of a = %s; want [a5 a4] from the index", got)
	}
	if got := read("a", first) + read("b", first); got != "[a7 a6][b2 b1]" || l.calls["a"]+l.calls["b"] != loads {
		t.Fatalf("pages after the write-throughs = %s, %d more loads; want [a7 a6][b2 b1] from the indexes",
			got, l.calls["a"]+l.calls["b"]-loads)
	}

	// With a cap of 2 channels, a third one pushes out the least recently
	// read one (a), whose index is dropped with its entries; the default
	// channel is never counted.
	account := func() {
		t.Helper()
		if err := pc.Account(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the accounting's clock counts milliseconds
	}
	account()
	read("b", first)
	account()
	if got := read("", first) + read("c", first); got != "[][]" {
		t.Fatalf("the empty default channel and c = %s", got)
	}
	account()
	if n, err := c.Redis().Exists(ctx, c.Key("cache:a", ":latest:state"), c.Key("cache:a", ":latest"),
		c.Key("cache:a", ":msg:")+all["a"][7].ID).Result(); err != nil || n != 0 {
		t.Fatalf("a's keys left after it was pushed out: %d, %v", n, err)
	}
	if _, hit, err := pc.ChannelPage(ctx, "b", 0, 2); err != nil || !hit {
		t.Fatalf("b's index after c came in: hit %v, %v", hit, err)
	}
	// Read again, a is rebuilt from PostgreSQL.
	before := l.calls["a"]
	if got := read("a", first); got != "[a7 a6]" || l.calls["a"] != before+1 {
		t.Fatalf("a read again = %s with %d loads, want [a7 a6] with one", got, l.calls["a"]-before)
	}
}

func TestPageCacheRefreshesViewsOfEveryChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	cfg := pagecache.Config{Pages: 2, ChannelPages: 2, PageSize: 2, TTL: time.Minute}
	api, worker := pagecache.New(c, cfg), pagecache.New(c, cfg)
	a, b, def := inChannel("a", 2), inChannel("b", 2), inChannel("", 2)
	for i := range def {
		def[i].ChannelID = messageapi.DefaultChannel
	}
	l := &channelLoader{calls: map[string]int{}, newest: map[string][]messageapi.MessageView{
		"a": newestFirst(a), "b": newestFirst(b), messageapi.DefaultChannel: newestFirst(def)}}
	for _, ch := range []string{"a", messageapi.DefaultChannel} { // b is not cached
		if _, err := api.Latest(ctx, messageapi.MessageRange{ChannelID: ch, Limit: 2}, l.load); err != nil {
			t.Fatal(err)
		}
	}
	bump := func(v messageapi.MessageView) messageapi.MessageView {
		v.ReactionCount, v.ReactionCounts, v.ReactionScores, v.Version = 1, map[string]int64{"like": 1}, map[string]int64{"like": 1}, 1
		return v
	}
	// The worker, which reads no channel, refreshes the cached ones, in
	// one batch of views of three channels.
	n, err := worker.RefreshViews(ctx, []messageapi.MessageView{bump(a[1]), bump(b[1]), bump(def[0])})
	if err != nil || n != 2 {
		t.Fatalf("RefreshViews = %d, %v; want the 2 views of cached channels written", n, err)
	}
	for _, ch := range []string{"a", messageapi.DefaultChannel} {
		vs, hit, err := api.ChannelPage(ctx, ch, 0, 2)
		if err != nil || !hit {
			t.Fatalf("page of %s after the refresh: hit %v, %v", ch, hit, err)
		}
		counts := 0
		for _, v := range vs {
			counts += int(decode(v).ReactionCount)
		}
		if counts != 1 {
			t.Errorf("%s's page holds %d reactions after the refresh, want 1", ch, counts)
		}
	}
	if n, err := c.Redis().Exists(ctx, c.Key("cache:b", ":msg:")+b[1].ID).Result(); err != nil || n != 0 {
		t.Errorf("an entry of uncached channel b was written: %d, %v", n, err)
	}
}

func TestNearCacheDropsThePagesOfTheChangedChannelOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, pcA, regA, regB := twoProcesses(t, time.Minute)
	general, marker, def := inChannel("general", 3), inChannel("marker", 2), views(2)
	l := &channelLoader{calls: map[string]int{}, newest: map[string][]messageapi.MessageView{
		"general": newestFirst(general[:2]), "marker": newestFirst(marker[:1]), messageapi.DefaultChannel: newestFirst(def)}}
	read := func(n *pagecache.NearCache, ch string) string {
		t.Helper()
		vs, err := n.Latest(ctx, messageapi.MessageRange{ChannelID: ch, Limit: 2}, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	await := func(n *pagecache.NearCache, ch, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for read(n, ch) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s's page is still not %s, 5 s after the change", ch, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for _, n := range []*pagecache.NearCache{a, b} {
		for _, ch := range []string{"general", "", "marker"} {
			read(n, ch)
		}
	}
	// The rebuilds of a's first reads were announced (three), and so is a
	// change of marker. A read that an announcement overtakes is not kept,
	// and a page read before one of its channel is dropped: only once both
	// processes have had all four do the default pages they read again stay.
	l.newest["marker"] = newestFirst(marker)
	if err := pcA.AddMessage(ctx, marker[1]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for drops(t, regA) < 4 || drops(t, regB) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("announcements received: a %v, b %v; want 4 each", drops(t, regA), drops(t, regB))
		}
		time.Sleep(time.Millisecond)
	}
	for _, n := range []*pagecache.NearCache{a, b} {
		if got := read(n, "marker"); got != "[marker1 marker0]" {
			t.Fatalf("marker's page after its change = %s", got)
		}
		read(n, "")
	}
	// Change the default channel's newest entry in Redis behind the near
	// caches' backs: only a drop of their default pages would show it.
	changed := def[1]
	changed.Text = "changed"
	e, err := changed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcA.Client().Redis().HSet(ctx, pcA.EntryKey(changed.ID), "v", 99, "d", e.JSON).Err(); err != nil {
		t.Fatal(err)
	}

	l.newest["general"] = newestFirst(general)
	if err := a.AddMessage(ctx, general[2]); err != nil {
		t.Fatal(err)
	}
	if got := read(a, "general"); got != "[general2 general1]" {
		t.Fatalf("the writer's page of its channel = %s", got)
	}
	await(b, "general", "[general2 general1]")
	for _, n := range []*pagecache.NearCache{a, b} {
		if got := read(n, ""); got != "[m1 m0]" {
			t.Errorf("default page = %s, want [m1 m0] from memory", got)
		}
	}
}
