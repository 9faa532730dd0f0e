package pagecache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// views returns n views with increasing UUIDv7 ids, oldest first.
func views(n int) []messageapi.MessageView {
	out := make([]messageapi.MessageView, n)
	for i := range out {
		id := uuid.Must(uuid.NewV7())
		out[i] = messageapi.NewMessageView(messageapi.Message{
			ID: id.String(), Text: fmt.Sprintf("m%d", i), UserID: "u",
			CreatedAt: messageapi.NewTime(time.Unix(id.Time().UnixTime())),
		})
	}
	return out
}

// newestFirst returns vs reversed.
func newestFirst(vs []messageapi.MessageView) []messageapi.MessageView {
	out := make([]messageapi.MessageView, len(vs))
	for i, v := range vs {
		out[len(vs)-1-i] = v
	}
	return out
}

// texts lists the texts of views, to compare pages in one line.
func texts[V messageapi.MessageView | messageapi.EncodedView](vs []V) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = decode(v).Text
	}
	return fmt.Sprint(s)
}

// decode returns a view from either form.
func decode[V messageapi.MessageView | messageapi.EncodedView](v V) messageapi.MessageView {
	switch v := any(v).(type) {
	case messageapi.EncodedView:
		var m messageapi.MessageView
		if err := json.Unmarshal(v.JSON, &m); err != nil {
			panic(err)
		}
		return m
	case messageapi.MessageView:
		return v
	}
	panic("unreachable")
}

func encode(t *testing.T, vs []messageapi.MessageView) []messageapi.EncodedView {
	t.Helper()
	out := make([]messageapi.EncodedView, len(vs))
	for i, v := range vs {
		e, err := v.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// newCache returns a cache of pages pages of 2 on a key prefix of its own,
// and its client.
func newCache(t *testing.T, pages int) (*pagecache.Cache, *redis.Client) {
	t.Helper()
	c := redistest.NewClient(t)
	return pagecache.New(c, pagecache.Config{Pages: pages, PageSize: 2, TTL: time.Minute}), c
}

func fill(t *testing.T, pc *pagecache.Cache, newest []messageapi.MessageView) {
	t.Helper()
	ctx := context.Background()
	token, err := pc.BeginFill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(newest) > pc.Capacity() {
		newest = newest[:pc.Capacity()]
	}
	ok, err := pc.CompleteFill(ctx, token, encode(t, newest))
	if err != nil || !ok {
		t.Fatalf("CompleteFill = %v, %v; want installed", ok, err)
	}
}

func mustPage(t *testing.T, pc *pagecache.Cache, offset, count int) ([]messageapi.EncodedView, bool) {
	t.Helper()
	vs, hit, err := pc.Page(context.Background(), offset, count)
	if err != nil {
		t.Fatal(err)
	}
	return vs, hit
}

func TestPageCacheMissUntilFilled(t *testing.T) {
	t.Parallel()
	pc, _ := newCache(t, 3) // capacity 7
	if _, hit := mustPage(t, pc, 0, 3); hit {
		t.Fatal("hit on an empty cache")
	}
	all := newestFirst(views(10))
	fill(t, pc, all)

	tests := []struct {
		offset, count int
		hit           bool
		want          []messageapi.MessageView
	}{
		{0, 3, true, all[0:3]},
		{2, 3, true, all[2:5]},
		{4, 3, true, all[4:7]},
		{5, 3, false, nil}, // reaches past the 7 cached ids, and there are more
		{7, 3, false, nil},
	}
	for _, tt := range tests {
		got, hit := mustPage(t, pc, tt.offset, tt.count)
		if hit != tt.hit || (hit && texts(got) != texts(tt.want)) {
			t.Errorf("Page(%d, %d) = %s, %v; want %s, %v", tt.offset, tt.count, texts(got), hit, texts(tt.want), tt.hit)
		}
	}
}

func TestPageCacheCompleteIndexAnswersShortPages(t *testing.T) {
	t.Parallel()
	pc, _ := newCache(t, 3)
	all := newestFirst(views(4)) // fewer than capacity: the index holds every message
	fill(t, pc, all)
	if got, hit := mustPage(t, pc, 2, 3); !hit || texts(got) != texts(all[2:4]) {
		t.Errorf("short last page = %s, %v; want %s, hit", texts(got), hit, texts(all[2:4]))
	}
	if got, hit := mustPage(t, pc, 10, 3); !hit || len(got) != 0 {
		t.Errorf("page past the end = %s, %v; want empty hit", texts(got), hit)
	}

	// An index without ids is a miss, never an empty page: it cannot tell
	// an empty table from an index key that Redis evicted.
	empty, _ := newCache(t, 3)
	fill(t, empty, nil)
	if got, hit := mustPage(t, empty, 0, 3); hit {
		t.Errorf("empty index = %s, hit; want a miss", texts(got))
	}
}

func TestPageCacheLostIndexKeyIsAMiss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	pc := pagecache.New(c, pagecache.Config{Pages: 2, PageSize: 2, TTL: time.Minute})
	fill(t, pc, newestFirst(views(3)))
	// As under an eviction policy: the index goes, its state stays.
	if err := c.Redis().Del(ctx, "{"+c.Prefix()+"cache}:latest").Err(); err != nil {
		t.Fatal(err)
	}
	if got, hit := mustPage(t, pc, 0, 2); hit {
		t.Fatalf("hit %s on an index whose key is gone", texts(got))
	}
}

func TestPageCacheCapacityTravelsWithTheIndex(t *testing.T) {
	t.Parallel()
	c := redistest.NewClient(t)
	small := pagecache.New(c, pagecache.Config{Pages: 1, PageSize: 2, TTL: time.Minute}) // capacity 3
	large := pagecache.New(c, pagecache.Config{Pages: 4, PageSize: 2, TTL: time.Minute}) // capacity 9
	all := newestFirst(views(10))
	fill(t, small, all)
	// The large process must not take the small index for a complete one.
	if got, hit := mustPage(t, large, 2, 3); hit {
		t.Fatalf("page beyond the small index = %s, hit; want a miss", texts(got))
	}
	if got, hit := mustPage(t, large, 0, 3); !hit || texts(got) != texts(all[:3]) {
		t.Fatalf("page inside the small index = %s, %v; want %s, hit", texts(got), hit, texts(all[:3]))
	}
	// A write-through from the large process trims to the index's capacity.
	added := views(1)[0]
	if err := large.AddMessage(context.Background(), added); err != nil {
		t.Fatal(err)
	}
	if got, hit := mustPage(t, small, 0, 3); !hit || texts(got) != texts(append([]messageapi.MessageView{added}, all[:2]...)) {
		t.Fatalf("after write-through = %s, %v", texts(got), hit)
	}
}

func TestPageCacheWriteThroughTrimsToCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pc, c := newCache(t, 2) // capacity 5
	old := views(5)
	fill(t, pc, newestFirst(old))
	added := views(3)
	for _, v := range added {
		if err := pc.AddMessage(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	want := newestFirst(append(old, added...))[:5]
	got, hit := mustPage(t, pc, 0, 5)
	if !hit || texts(got) != texts(want) {
		t.Fatalf("after write-through = %s, %v; want %s, hit", texts(got), hit, texts(want))
	}
	if _, hit := mustPage(t, pc, 1, 5); hit {
		t.Error("a page reaching past the trimmed index was a hit")
	}
	// The entries of trimmed messages go with them.
	for _, v := range old[:3] {
		if n, _ := c.Redis().Exists(ctx, "{"+c.Prefix()+"cache}:msg:"+v.ID).Result(); n != 0 {
			t.Errorf("entry of trimmed message %s is still stored", v.Text)
		}
	}
}

func TestPageCacheWriteThroughWithoutIndexAddsNothing(t *testing.T) {
	t.Parallel()
	// As after a Redis restart: no index. A write-through must not create an
	// index that holds only the new message.
	pc, c := newCache(t, 2)
	v := views(1)[0]
	if err := pc.AddMessage(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if got, hit := mustPage(t, pc, 0, 2); hit {
		t.Fatalf("hit %s on an index that was never filled", texts(got))
	}
	if n, _ := c.Redis().Exists(context.Background(), "{"+c.Prefix()+"cache}:msg:"+v.ID).Result(); n != 0 {
		t.Error("a write-through without an index stored an entry nothing reads")
	}
}

func TestPageCacheFillMergesWritesInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pc, _ := newCache(t, 2)
	snapshot := newestFirst(views(3)) // what the rebuild read from PostgreSQL
	token, err := pc.BeginFill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A message committed after the snapshot is written through.
	late := views(1)[0]
	if err := pc.AddMessage(ctx, late); err != nil {
		t.Fatal(err)
	}
	ok, err := pc.CompleteFill(ctx, token, encode(t, snapshot))
	if err != nil || !ok {
		t.Fatalf("CompleteFill = %v, %v; want installed", ok, err)
	}
	want := append([]messageapi.MessageView{late}, snapshot...)
	if got, hit := mustPage(t, pc, 0, 4); !hit || texts(got) != texts(want) {
		t.Fatalf("page = %s, %v; want %s with the late message merged", texts(got), hit, texts(want))
	}

	// A rebuild that another one took over from is refused.
	first, err := pc.BeginFill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := pc.BeginFill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := pc.CompleteFill(ctx, first, encode(t, snapshot)); err != nil || ok {
		t.Fatalf("superseded CompleteFill = %v, %v; want refused", ok, err)
	}
	if ok, err := pc.CompleteFill(ctx, second, encode(t, want)); err != nil || !ok {
		t.Fatalf("current CompleteFill = %v, %v; want installed", ok, err)
	}
}

func TestPageCacheRefreshIsVersioned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pc, _ := newCache(t, 2)
	outside := views(1)[0]
	vs := views(2)
	fill(t, pc, newestFirst(vs))
	v := vs[1]

	v2 := v
	v2.Version, v2.ReactionCount = 2, 2
	v2.ReactionCounts = map[string]int64{"like": 2}
	v2.ReactionScores = map[string]int64{"like": 7}
	v1 := v
	v1.Version, v1.ReactionCount = 1, 1
	v1.ReactionCounts = map[string]int64{"like": 1}
	v1.ReactionScores = map[string]int64{"like": 1}

	if n, err := pc.RefreshViews(ctx, []messageapi.MessageView{v2}); err != nil || n != 1 {
		t.Fatalf("RefreshViews(v2) = %d, %v; want 1", n, err)
	}
	// A slow writer arrives with an older version: it must not win.
	if n, err := pc.RefreshViews(ctx, []messageapi.MessageView{v1}); err != nil || n != 0 {
		t.Fatalf("RefreshViews(v1) = %d, %v; want 0", n, err)
	}
	got, hit := mustPage(t, pc, 0, 1)
	if v := decode(got[0]); !hit || v.ReactionCount != 2 || v.ReactionScores["like"] != 7 {
		t.Fatalf("cached view = %+v, %v; want the version 2 view", v, hit)
	}

	// A view of a message older than the cached ones is not written.
	outside.Version = 5
	if n, err := pc.RefreshViews(ctx, []messageapi.MessageView{outside}); err != nil || n != 0 {
		t.Fatalf("RefreshViews(outside) = %d, %v; want 0", n, err)
	}
	// A view of a message newer than the cached ones is written, so a
	// write-through still on its way cannot put an older view back.
	newer := views(1)[0]
	newer.Version = 1
	if n, err := pc.RefreshViews(ctx, []messageapi.MessageView{newer}); err != nil || n != 1 {
		t.Fatalf("RefreshViews(newer) = %d, %v; want 1", n, err)
	}
	stale := newer
	stale.Version = 0
	if err := pc.AddMessage(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if n, err := pc.RefreshViews(ctx, []messageapi.MessageView{newer}); err != nil || n != 0 {
		t.Fatalf("version 1 was replaced by the version 0 write-through (RefreshViews = %d, %v)", n, err)
	}
}

func TestPageCachePageBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pc, _ := newCache(t, 2) // capacity 5
	all := newestFirst(views(8))
	fill(t, pc, all)
	tests := []struct {
		before string
		count  int
		hit    bool
		want   []messageapi.MessageView
	}{
		{all[0].ID, 2, true, all[1:3]},
		{all[2].ID, 2, true, all[3:5]},
		{all[3].ID, 2, false, nil}, // would need all[5], outside the index
	}
	for _, tt := range tests {
		got, hit, err := pc.PageBefore(ctx, tt.before, tt.count)
		if err != nil {
			t.Fatal(err)
		}
		if hit != tt.hit || (hit && texts(got) != texts(tt.want)) {
			t.Errorf("PageBefore(%s, %d) = %s, %v; want %s, %v", tt.before, tt.count, texts(got), hit, texts(tt.want), tt.hit)
		}
	}
}
