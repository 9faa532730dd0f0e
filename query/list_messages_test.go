package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/command"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
	"messageapi/query"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

type fixture struct {
	db     *postgres.DB
	cache  *pagecache.Cache
	reg    *prometheus.Registry
	create *command.CreateMessageHandler
	list   *query.ListMessagesHandler
}

// newFixture returns the message use cases on a schema of their own, with
// a cache of 5 pages on rc, or on a key prefix of their own when rc is nil.
func newFixture(t *testing.T, rc *redis.Client) *fixture {
	t.Helper()
	db := postgrestest.NewDB(t)
	reg := prometheus.NewRegistry()
	if rc == nil {
		rc = redistest.Open(t, redis.Config{Registerer: reg})
	}
	store := postgres.NewMessageStore(db)
	cache := pagecache.New(rc, pagecache.Config{Pages: 5, TTL: time.Minute})
	return &fixture{
		db:     db,
		cache:  cache,
		reg:    reg,
		create: command.NewCreateMessageHandler(store, cache, slog.New(slog.DiscardHandler)),
		list:   query.NewListMessagesHandler(store, postgres.NewReactionStore(db), cache, query.ListMessagesConfig{}),
	}
}

// joined returns how many requests have waited for another's rebuild.
func (f *fixture) joined(t *testing.T) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "messageapi_cache_fills_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "joined" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (f *fixture) post(t *testing.T, text string) messageapi.MessageView {
	t.Helper()
	v, _, err := f.create.Handle(context.Background(), command.CreateMessage{Text: text, UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) page(t *testing.T, q query.ListMessages) query.MessagePage {
	t.Helper()
	p, err := f.list.Handle(context.Background(), q)
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	return p
}

func texts(p query.MessagePage) string {
	s := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		s[i] = decode(m).Text
	}
	return fmt.Sprint(s)
}

func decode(e messageapi.EncodedView) messageapi.MessageView {
	var v messageapi.MessageView
	if err := json.Unmarshal(e.JSON, &v); err != nil {
		panic(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// seq returns "m<from>" down to "m<to>", newest first.
func seq(from, to int) string {
	var s []string
	for i := from; i >= to; i-- {
		s = append(s, fmt.Sprintf("m%d", i))
	}
	return fmt.Sprint(s)
}

func TestPageNumbers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := 1; i <= 75; i++ { // more than the 51 cached
		f.post(t, fmt.Sprintf("m%d", i))
	}
	tests := []struct {
		q        query.ListMessages
		want     string
		wantNext bool
	}{
		{query.ListMessages{}, seq(75, 66), true},
		{query.ListMessages{Page: ptr(1)}, seq(75, 66), true},
		{query.ListMessages{Page: ptr(2)}, seq(65, 56), true},
		{query.ListMessages{Page: ptr(5)}, seq(35, 26), true}, // last cached page
		{query.ListMessages{Page: ptr(6)}, seq(25, 16), true}, // from PostgreSQL
		{query.ListMessages{Page: ptr(8)}, seq(5, 1), false},
		{query.ListMessages{Page: ptr(9)}, "[]", false},
		{query.ListMessages{Page: ptr(3), Limit: ptr(25)}, seq(25, 1), false},
		{query.ListMessages{Limit: ptr(100)}, seq(75, 1), false},
	}
	for _, tt := range tests {
		// Twice: the first read may fill the cache, the second is served by it.
		for range 2 {
			p := f.page(t, tt.q)
			if texts(p) != tt.want || (p.NextCursor != "") != tt.wantNext {
				t.Errorf("page %v limit %v = %s next %q; want %s, next %v",
					deref(tt.q.Page), deref(tt.q.Limit), texts(p), p.NextCursor, tt.want, tt.wantNext)
			}
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return "-"
	}
	return *p
}

// TestCursorWalkWhileWriting walks every page by cursor while new messages
// arrive between pages: it must see each older message exactly once.
func TestCursorWalkWhileWriting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	want := map[string]bool{}
	for i := range 95 {
		want[f.post(t, fmt.Sprintf("old%d", i)).ID] = true
	}
	seen := map[string]bool{}
	var cursor *string
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("cursor walk does not end")
		}
		p := f.page(t, query.ListMessages{Cursor: cursor})
		for _, m := range p.Messages {
			if seen[m.ID] {
				t.Fatalf("message %s (%s) shown twice", m.ID, decode(m).Text)
			}
			seen[m.ID] = true
		}
		for i := range 3 { // new messages land before the cursor, not after it
			f.post(t, fmt.Sprintf("new%d-%d", pages, i))
		}
		if p.NextCursor == "" {
			break
		}
		cursor = &p.NextCursor
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("message %s skipped by the walk", id)
		}
	}
}

// TestCachedPagesComeFromRedis proves pages in the cached range are served
// by the cache: a change made behind its back in PostgreSQL is not seen
// there, and is seen on a page beyond the cached range.
func TestCachedPagesComeFromRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	for i := 1; i <= 60; i++ {
		f.post(t, fmt.Sprintf("m%d", i))
	}
	// Reading pages 1 and 2 caches them: page 1 builds the index, page 2
	// extends it.
	f.page(t, query.ListMessages{})
	f.page(t, query.ListMessages{Page: ptr(2)})
	if _, err := f.db.Pool().Exec(ctx, `update messages set text = text || '-pg'`); err != nil {
		t.Fatal(err)
	}
	if got := texts(f.page(t, query.ListMessages{Page: ptr(2)})); got != seq(50, 41) {
		t.Errorf("cached page 2 = %s, want it from the cache: %s", got, seq(50, 41))
	}
	if got := f.page(t, query.ListMessages{Page: ptr(6)}); decode(got.Messages[0]).Text != "m10-pg" {
		t.Errorf("page 6 = %s, want it from PostgreSQL", texts(got))
	}

	// A new message is written through: its author sees it at once.
	v := f.post(t, "fresh")
	if p := f.page(t, query.ListMessages{Limit: ptr(1)}); len(p.Messages) != 1 || p.Messages[0].ID != v.ID {
		t.Errorf("first page after a create = %s, want the new message", texts(p))
	}
}

// TestRedisDownFallsBackToPostgres reads through a cache whose Redis does
// not answer: every read comes from PostgreSQL and is complete.
func TestRedisDownFallsBackToPostgres(t *testing.T) {
	t.Parallel()
	rc, err := redis.Open(redis.Config{URL: "redis://127.0.0.1:1/0", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f := newFixture(t, rc)
	for i := 1; i <= 12; i++ {
		f.post(t, fmt.Sprintf("m%d", i))
	}
	if got := texts(f.page(t, query.ListMessages{})); got != seq(12, 3) {
		t.Errorf("page 1 = %s, want %s", got, seq(12, 3))
	}
	p := f.page(t, query.ListMessages{})
	if got := texts(f.page(t, query.ListMessages{Cursor: &p.NextCursor})); got != seq(2, 1) {
		t.Errorf("page after cursor = %s, want %s", got, seq(2, 1))
	}
}

// gatedReader is the real store, paused after one chosen read: the test
// holds a cache rebuild between its PostgreSQL read and its install.
type gatedReader struct {
	*postgres.MessageStore
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedReader) ListMessages(ctx context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error) {
	views, err := g.MessageStore.ListMessages(ctx, r)
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return views, err
}

// TestJoinedRebuildShowsMessagesCommittedMeanwhile: a reader that joins a
// rebuild begun before a message was committed must still see it.
func TestJoinedRebuildShowsMessagesCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	f.post(t, "old")
	gate := &gatedReader{MessageStore: postgres.NewMessageStore(f.db), entered: make(chan struct{}), release: make(chan struct{})}
	list := query.NewListMessagesHandler(gate, postgres.NewReactionStore(f.db), f.cache, query.ListMessagesConfig{})
	gate.armed.Store(true)

	first := make(chan query.MessagePage)
	go func() {
		p, err := list.Handle(ctx, query.ListMessages{})
		if err != nil {
			t.Error(err)
		}
		first <- p
	}()
	<-gate.entered // the rebuild has read PostgreSQL: [old]
	v := f.post(t, "new")
	second := make(chan query.MessagePage)
	go func() {
		p, err := list.Handle(ctx, query.ListMessages{}) // misses, joins the rebuild
		if err != nil {
			t.Error(err)
		}
		second <- p
	}()
	// The second reader misses and waits for the rebuild in flight.
	deadline := time.Now().Add(10 * time.Second)
	for f.joined(t) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second reader did not join the rebuild in flight")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate.release)
	<-first
	if p := <-second; len(p.Messages) == 0 || p.Messages[0].ID != v.ID {
		t.Fatalf("page read after the create = %s, want the new message first", texts(p))
	}
	if got := texts(f.page(t, query.ListMessages{})); got != "[new old]" {
		t.Errorf("cached page after the rebuild = %s, want [new old]", got)
	}
}

// TestRetriedCreateWritesThrough: a create that committed but never
// reached the cache (its process died) is written through by the retry.
func TestRetriedCreateWritesThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	f.post(t, "before")
	f.page(t, query.ListMessages{}) // fills the cache
	id := uuid.Must(uuid.NewV7())
	lost := messageapi.Message{ID: id.String(), Text: "lost reply", UserID: "u", CreatedAt: messageapi.NewTime(time.Unix(id.Time().UnixTime()))}
	if _, err := postgres.NewMessageStore(f.db).CreateMessage(ctx, lost); err != nil { // committed, not written through
		t.Fatal(err)
	}
	v, created, err := f.create.Handle(ctx, command.CreateMessage{ID: lost.ID, Text: lost.Text, UserID: lost.UserID})
	if err != nil || created || v.ID != lost.ID {
		t.Fatalf("retry = %v, created %v, %v; want the stored message", v.ID, created, err)
	}
	if got := texts(f.page(t, query.ListMessages{})); got != "[lost reply before]" {
		t.Errorf("cached page after the retry = %s, want [lost reply before]", got)
	}
}

// blockingReader is the real store, except that each read waits for the
// test to let it go; it counts the reads in flight.
type blockingReader struct {
	*postgres.MessageStore
	inFlight atomic.Int32
	release  chan struct{}
}

func (b *blockingReader) ListMessages(ctx context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error) {
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	<-b.release
	return b.MessageStore.ListMessages(ctx, r)
}

// TestHeavyReadsWaitTheirTurn: with HeavyReads 2, two page reads from
// PostgreSQL run at once; a third waits, and gives up as unavailable when
// its deadline comes first, without reaching the store.
func TestHeavyReadsWaitTheirTurn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := range 3 {
		f.post(t, fmt.Sprintf("m%d", i))
	}
	store := &blockingReader{MessageStore: postgres.NewMessageStore(f.db), release: make(chan struct{})}
	list := query.NewListMessagesHandler(store, postgres.NewReactionStore(f.db), f.cache, query.ListMessagesConfig{HeavyReads: 2})
	deep := query.ListMessages{Page: ptr(9)} // outside the cached pages: from PostgreSQL
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := list.Handle(context.Background(), deep)
			done <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for store.inFlight.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d reads in flight, want 2", store.inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := list.Handle(ctx, deep)
	if messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE || store.inFlight.Load() != 2 {
		t.Errorf("third read = %v with %d in flight; want unavailable, never reaching the store", err, store.inFlight.Load())
	}
	close(store.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestAround(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ids := map[int]string{}
	for i := 1; i <= 30; i++ {
		ids[i] = f.post(t, fmt.Sprintf("m%d", i)).ID
	}
	tests := []struct {
		around, limit  int
		want           string
		wantPrev, next bool
	}{
		{15, 10, seq(20, 11), true, true},  // 5 newer, the message, 4 older
		{15, 1, seq(15, 15), true, true},   // the message alone
		{15, 3, seq(16, 14), true, true},   // 1 newer, the message, 1 older
		{30, 10, seq(30, 21), false, true}, // the newest: older ones fill the page
		{2, 10, seq(10, 1), true, false},   // near the oldest: newer ones fill it
		{15, 100, seq(30, 1), false, false},
	}
	for _, tt := range tests {
		p := f.page(t, query.ListMessages{Around: ptr(ids[tt.around]), Limit: ptr(tt.limit)})
		if texts(p) != tt.want || (p.PrevCursor != "") != tt.wantPrev || (p.NextCursor != "") != tt.next {
			t.Errorf("around m%d limit %d = %s prev %v next %v; want %s prev %v next %v", tt.around, tt.limit,
				texts(p), p.PrevCursor != "", p.NextCursor != "", tt.want, tt.wantPrev, tt.next)
		}
	}
	p := f.page(t, query.ListMessages{Around: ptr(ids[15]), Limit: ptr(10)})
	if got := texts(f.page(t, query.ListMessages{Cursor: &p.PrevCursor, Limit: ptr(5)})); got != seq(25, 21) {
		t.Errorf("the page after the around page = %s, want %s", got, seq(25, 21))
	}
	if got := texts(f.page(t, query.ListMessages{Cursor: &p.NextCursor, Limit: ptr(5)})); got != seq(10, 6) {
		t.Errorf("the page before the around page = %s, want %s", got, seq(10, 6))
	}

	ctx := context.Background()
	_, err := f.list.Handle(ctx, query.ListMessages{Around: ptr(uuid.Must(uuid.NewV7()).String())})
	if messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Errorf("around an unknown message = %v, want not found", err)
	}
	for _, q := range []query.ListMessages{
		{Around: ptr(ids[1]), Page: ptr(2)},
		{Around: ptr(ids[1]), Cursor: &p.NextCursor},
		{Around: ptr("not-an-id")},
	} {
		if _, err := f.list.Handle(ctx, q); messageapi.ErrorCode(err) != messageapi.EINVALID || messageapi.ErrorFields(err)["around"] == "" {
			t.Errorf("%+v = %v, want invalid_argument naming around", q, err)
		}
	}
}

// TestWalkBothWaysWhileWriting jumps into the history, then walks to the
// present with prev_cursor and to the beginning with next_cursor while new
// messages arrive: every message is seen exactly once, the new ones too.
func TestWalkBothWaysWhileWriting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var all []string
	for i := range 40 {
		all = append(all, f.post(t, fmt.Sprintf("old%d", i)).ID)
	}
	seen := map[string]int{}
	start := f.page(t, query.ListMessages{Around: ptr(all[12]), Limit: ptr(7)})
	for _, m := range start.Messages {
		seen[m.ID]++
	}
	newer := start.PrevCursor
	for pages := 0; newer != ""; pages++ {
		if pages > 50 {
			t.Fatal("the walk toward the present does not end")
		}
		p := f.page(t, query.ListMessages{Cursor: &newer, Limit: ptr(4)})
		for _, m := range p.Messages {
			seen[m.ID]++
		}
		if pages < 4 { // new messages land at the present, ahead of the walk
			all = append(all, f.post(t, fmt.Sprintf("new%d", pages)).ID)
		}
		newer = p.PrevCursor
	}
	older := start.NextCursor
	for pages := 0; older != ""; pages++ {
		if pages > 50 {
			t.Fatal("the walk toward the beginning does not end")
		}
		p := f.page(t, query.ListMessages{Cursor: &older, Limit: ptr(3)})
		for _, m := range p.Messages {
			seen[m.ID]++
		}
		older = p.NextCursor
	}
	for _, id := range all {
		if seen[id] != 1 {
			t.Errorf("message %s seen %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(all) {
		t.Errorf("the walks saw %d messages, there are %d", len(seen), len(all))
	}
}

// TestOwnReactions: with a user, every message of a page, cached or read
// from PostgreSQL, and a single message carry that user's live reactions;
// without one the field is absent; the cached bytes are left as they were.
func TestOwnReactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	reactions := postgres.NewReactionStore(f.db)
	var ids []string
	for i := range 60 { // more than the 51 cached
		ids = append(ids, f.post(t, fmt.Sprintf("m%d", i)).ID)
	}
	now := time.Now()
	put := func(message, user, typ string) {
		if _, err := reactions.PutReaction(ctx, messageapi.PutReactionParams{ID: uuid.Must(uuid.NewV7()).String(),
			MessageID: message, UserID: user, Type: typ, Score: 2, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	put(ids[59], "alice", "like")
	put(ids[59], "alice", "love")
	put(ids[59], "bob", "like")
	put(ids[5], "alice", "wow") // on a page outside the cache
	if _, err := reactions.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: ids[59], UserID: "alice", Type: "love", At: now}); err != nil {
		t.Fatal(err)
	}
	own := func(e messageapi.EncodedView) []string {
		var v struct {
			Own *[]messageapi.Reaction `json:"own_reactions"`
		}
		if err := json.Unmarshal(e.JSON, &v); err != nil {
			t.Fatalf("%s: %v", e.JSON, err)
		}
		if v.Own == nil {
			return nil
		}
		types := []string{}
		for _, r := range *v.Own {
			types = append(types, r.UserID+":"+r.Type)
		}
		return types
	}
	f.page(t, query.ListMessages{}) // fills the cache
	for _, cached := range []bool{true, false} {
		q := query.ListMessages{UserID: ptr("alice")}
		newest, other := ids[59], ids[58]
		if !cached {
			q.Page = ptr(6) // m9..m0, from PostgreSQL
			newest, other = ids[5], ids[4]
		}
		p := f.page(t, q)
		for _, m := range p.Messages {
			got := fmt.Sprint(own(m))
			switch m.ID {
			case newest:
				if want := map[bool]string{true: "[alice:like]", false: "[alice:wow]"}[cached]; got != want {
					t.Errorf("cached %v: own reactions %s, want %s", cached, got, want)
				}
			case other:
				if got != "[]" {
					t.Errorf("cached %v: own reactions %s on a message alice did not react to, want []", cached, got)
				}
			}
		}
	}
	if p := f.page(t, query.ListMessages{}); own(p.Messages[0]) != nil {
		t.Error("a page read without a user carries own_reactions")
	}
	get := query.NewGetMessageHandler(postgres.NewMessageStore(f.db), reactions)
	v, err := get.Handle(ctx, query.GetMessage{ID: ids[59], UserID: ptr("bob")})
	if err != nil || v.OwnReactions == nil || len(*v.OwnReactions) != 1 || (*v.OwnReactions)[0].UserID != "bob" {
		t.Errorf("GetMessage for bob = %+v, %v", v.OwnReactions, err)
	}
	if _, err := f.list.Handle(ctx, query.ListMessages{UserID: ptr("not valid")}); messageapi.ErrorFields(err)["user_id"] == "" {
		t.Errorf("a bad user_id = %v, want invalid_argument naming user_id", err)
	}
}
