package pagecache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// recordingLoader is a channelLoader that records the ranges asked of it,
// and runs during, when set, once, after it has taken its snapshot: what
// other processes do while a read of PostgreSQL is on its way.
type recordingLoader struct {
	channelLoader
	asked  []messageapi.MessageRange
	during func()
}

func newRecordingLoader(channel string, newest []messageapi.MessageView) *recordingLoader {
	return &recordingLoader{channelLoader: channelLoader{
		newest: map[string][]messageapi.MessageView{channel: newest}, calls: map[string]int{}}}
}

func (l *recordingLoader) load(ctx context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
	l.asked = append(l.asked, r)
	out, err := l.channelLoader.load(ctx, r)
	if during := l.during; during != nil {
		l.during = nil
		during()
	}
	return out, err
}

// cached returns how many ids the index of channel holds, and how many
// entries of the channel Redis holds.
func cached(t *testing.T, c *redis.Client, channel string) (ids, entries int) {
	t.Helper()
	ctx := context.Background()
	n, err := c.Redis().ZCard(ctx, c.Key("cache:"+channel, ":latest")).Result()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Redis().Keys(ctx, c.Key("cache:"+channel, ":msg:*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(n), len(keys)
}

// TestPageCacheFillsOnlyWhatIsRead: a read of page 1 of a channel without
// an index reads and caches page 1 (and the one id that says whether a
// page follows), not the channel's whole cached range; each deeper page
// read extends the index by the messages it lacks, read below its oldest.
func TestPageCacheFillsOnlyWhatIsRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{TTL: time.Minute}) // 5 pages of 10 a channel
	all := newestFirst(inChannel("big", 100))
	l := newRecordingLoader("big", all)
	read := func(r messageapi.MessageRange) string {
		t.Helper()
		r.ChannelID = "big"
		vs, err := pc.Latest(ctx, r, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	// As the query asks: a page of 10, and one more message.
	page := func(n int) messageapi.MessageRange { return messageapi.MessageRange{Offset: (n - 1) * 10, Limit: 11} }
	check := func(step string, loads, served, ids int) {
		t.Helper()
		gotIDs, entries := cached(t, c, "big")
		if l.calls["big"] != loads || l.served != served || gotIDs != ids || entries != ids {
			t.Fatalf("%s: %d loads of %d views, %d ids and %d entries cached; want %d loads of %d, %d and %d",
				step, l.calls["big"], l.served, gotIDs, entries, loads, served, ids, ids)
		}
	}

	if got := read(page(1)); got != texts(all[:11]) {
		t.Fatalf("page 1 = %s", got)
	}
	check("page 1", 1, 11, 11)
	if l.asked[0].Limit != 11 || l.asked[0].Offset != 0 || l.asked[0].BeforeID != "" {
		t.Fatalf("page 1 asked the store for %+v; want the newest 11", l.asked[0])
	}
	read(page(1))
	check("page 1 again", 1, 11, 11)

	if got := read(page(2)); got != texts(all[10:21]) {
		t.Fatalf("page 2 = %s", got)
	}
	check("page 2", 2, 21, 21)
	if r := l.asked[1]; r.BeforeID != all[10].ID || r.Limit != 10 {
		t.Fatalf("page 2 asked the store for %+v; want the 10 below the oldest cached", r)
	}
	read(page(2))
	check("page 2 again", 2, 21, 21)

	// A cursor page below the index extends it too.
	if got := read(messageapi.MessageRange{BeforeID: all[19].ID, Limit: 11}); got != texts(all[20:31]) {
		t.Fatalf("cursor page = %s", got)
	}
	check("cursor page", 3, 31, 31)
	// Page 5 is the deepest a channel's index holds; page 6 comes from the
	// store, and the index stays as it is.
	if got := read(page(5)); got != texts(all[40:51]) {
		t.Fatalf("page 5 = %s", got)
	}
	check("page 5", 4, 51, 51)
	for n := 1; n <= 5; n++ {
		read(page(n))
	}
	check("pages 1 to 5 again", 4, 51, 51)
	if got := read(page(6)); got != texts(all[50:61]) {
		t.Fatalf("page 6 = %s", got)
	}
	check("page 6", 5, 62, 51)
}

// TestPageCacheExtensionStaysExact: writes made while an extension reads
// PostgreSQL are neither lost nor undone by it.
func TestPageCacheExtensionStaysExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{ChannelPages: 3, PageSize: 2, TTL: time.Minute}) // 7 ids
	named := func(text string) messageapi.MessageView {
		v := inChannel("x", 1)[0]
		v.Text = text
		return v
	}
	var older, newer []messageapi.MessageView // x0..x4, then x5..x9
	for i := range 5 {
		older = append(older, named(fmt.Sprintf("x%d", i)))
	}
	late := named("late") // created between x4 and x5, committed later
	for i := 5; i < 10; i++ {
		newer = append(newer, named(fmt.Sprintf("x%d", i)))
	}
	l := newRecordingLoader("x", newestFirst(append(append([]messageapi.MessageView{}, older...), newer...)))
	read := func(r messageapi.MessageRange) string {
		t.Helper()
		r.ChannelID = "x"
		vs, err := pc.Latest(ctx, r, l.load)
		if err != nil {
			t.Fatal(err)
		}
		return texts(vs)
	}
	if got := read(messageapi.MessageRange{Limit: 3}); got != "[x9 x8 x7]" {
		t.Fatalf("page 1 = %s", got)
	}

	// While the extension reads x6 x5 x4, a message is created at the top
	// and x5 gains a reaction, whose refresh comes before the extension's
	// install with its older view.
	fresh := named("fresh")
	x5 := newer[0]
	x5.Version, x5.ReactionCount, x5.ReactionCounts, x5.ReactionScores = 1, 1, map[string]int64{"like": 1}, map[string]int64{"like": 1}
	l.during = func() {
		l.newest["x"] = append([]messageapi.MessageView{fresh}, l.newest["x"]...)
		l.newest["x"][5] = x5
		if err := pc.AddMessage(ctx, fresh); err != nil {
			t.Error(err)
		}
		if _, err := pc.RefreshViews(ctx, []messageapi.MessageView{x5}); err != nil {
			t.Error(err)
		}
	}
	if got := read(messageapi.MessageRange{Offset: 3, Limit: 3}); got != "[x7 x6 x5]" {
		t.Fatalf("page 2 = %s; want [x7 x6 x5], counted from the fresh message", got)
	}
	vs, hit, err := pc.ChannelPage(ctx, "x", 0, 6)
	if err != nil || !hit || texts(vs) != "[fresh x9 x8 x7 x6 x5]" || decode(vs[5]).ReactionCount != 1 {
		t.Fatalf("index after the extension = %s (x5 with %d reactions), hit %v, %v; want [fresh x9 x8 x7 x6 x5] with x5's reaction",
			texts(vs), decode(vs[min(5, len(vs)-1)]).ReactionCount, hit, err)
	}

	// A message committed late, with an id older than the index's oldest,
	// is written through while an extension reads the messages below: the
	// extension, which lacks it, is refused.
	l.during = func() {
		all := newestFirst(append(append(append([]messageapi.MessageView{}, older...), late), newer...))
		l.newest["x"] = append([]messageapi.MessageView{fresh}, all...)
		l.newest["x"][5] = x5
		if err := pc.AddMessage(ctx, late); err != nil {
			t.Error(err)
		}
	}
	if got := read(messageapi.MessageRange{Offset: 4, Limit: 3}); got != "[x6 x5 late]" {
		t.Fatalf("page 3 = %s; want [x6 x5 late]", got)
	}
	if vs, hit, err := pc.ChannelPage(ctx, "x", 0, 7); err != nil || (hit && texts(vs) != "[fresh x9 x8 x7 x6 x5 late]") {
		t.Fatalf("index after the refused extension = %s, hit %v, %v", texts(vs), hit, err)
	}
	// The next read extends it, with the late message.
	if got := read(messageapi.MessageRange{Offset: 4, Limit: 3}); got != "[x6 x5 late]" {
		t.Fatalf("page 3 again = %s; want [x6 x5 late]", got)
	}
	if vs, hit, err := pc.ChannelPage(ctx, "x", 0, 7); err != nil || !hit || texts(vs) != "[fresh x9 x8 x7 x6 x5 late]" {
		t.Fatalf("index after the second extension = %s, hit %v, %v; want every message down to late", texts(vs), hit, err)
	}
}

// TestPageCacheLateMessageDuringAnExtensionLeavesNoHole: a message older
// than the index's oldest id, written through while an extension is in
// flight (its transaction committed late), would sit below messages the
// index lacks: it refuses the extension and is trimmed away at once, so no
// page skips a message, whether the extension then installs, or fails
// and a later extension starts from the index as it is.
func TestPageCacheLateMessageDuringAnExtensionLeavesNoHole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, loadFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("load fails %v", loadFails), func(t *testing.T) {
			c := redistest.NewClient(t)
			pc := pagecache.New(c, pagecache.Config{ChannelPages: 3, PageSize: 2, TTL: time.Minute})
			other := pagecache.New(c, pagecache.Config{ChannelPages: 3, PageSize: 2, TTL: time.Minute}) // another API process
			vs := inChannel("x", 12)                                                                    // oldest first; vs[4] and vs[5] commit late
			lates := []messageapi.MessageView{vs[4], vs[5]}
			var committed []messageapi.MessageView
			for i, v := range vs {
				if i != 4 && i != 5 {
					committed = append(committed, v)
				}
			}
			l := newRecordingLoader("x", newestFirst(committed))
			readFrom := func(pc *pagecache.Cache, r messageapi.MessageRange, load messageapi.LoadViews) (string, error) {
				r.ChannelID = "x"
				got, err := pc.Latest(ctx, r, load)
				return texts(got), err
			}
			read := func(r messageapi.MessageRange, load messageapi.LoadViews) (string, error) {
				return readFrom(pc, r, load)
			}
			truth := func(offset, limit int) string {
				all := newestFirst(vs)
				return texts(all[offset:min(len(all), offset+limit)])
			}
			if got, err := read(messageapi.MessageRange{Limit: 3}, l.load); err != nil || got != truth(0, 3) {
				t.Fatalf("page 1 = %s, %v; want %s", got, err, truth(0, 3))
			}
			// Page 2's extension reads PostgreSQL; meanwhile the late
			// message commits and is written through.
			extension := func(ctx context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
				l.newest["x"] = newestFirst(vs)
				for _, late := range lates {
					if err := pc.AddMessage(ctx, late); err != nil {
						t.Error(err)
					}
				}
				// Other readers meanwhile: the index must not serve the
				// late messages next to the newest ones.
				for _, r := range []messageapi.MessageRange{{Limit: 5}, {Offset: 2, Limit: 3}, {Offset: 2, Limit: 5}} {
					if got, err := readFrom(other, r, l.channelLoader.load); err != nil || got != truth(r.Offset, r.Limit) {
						t.Errorf("a read of offset %d limit %d during the extension = %s, %v; want %s", r.Offset, r.Limit, got, err, truth(r.Offset, r.Limit))
					}
				}
				if loadFails {
					return nil, fmt.Errorf("postgres unavailable")
				}
				return l.channelLoader.load(ctx, r)
			}
			if got, err := read(messageapi.MessageRange{Offset: 2, Limit: 3}, extension); loadFails != (err != nil) || (err == nil && got != truth(2, 3)) {
				t.Fatalf("page 2 = %s, %v; want %s (an error only when the load fails)", got, err, truth(2, 3))
			}
			for _, r := range []messageapi.MessageRange{{Offset: 2, Limit: 3}, {Offset: 3, Limit: 4}, {Limit: 7}, {Offset: 4, Limit: 6}} {
				if got, err := read(r, l.load); err != nil || got != truth(r.Offset, r.Limit) {
					t.Errorf("offset %d limit %d = %s, %v; want %s", r.Offset, r.Limit, got, err, truth(r.Offset, r.Limit))
				}
			}
		})
	}
}
