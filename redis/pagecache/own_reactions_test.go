package pagecache_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
	"messageapi/redis"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
)

// countingStore is the real reaction store, counting the reads that reach
// it and optionally holding loads at a gate.
type countingStore struct {
	*postgres.ReactionStore
	probes, loads atomic.Int32
	gate          chan chan struct{} // when set, a load hands over a channel and waits for it to close
}

func (s *countingStore) OwnReactions(ctx context.Context, ids []string, user string) (map[string][]messageapi.Reaction, error) {
	s.probes.Add(1)
	return s.ReactionStore.OwnReactions(ctx, ids, user)
}

func (s *countingStore) MessageReactions(ctx context.Context, id string, limit int, each func(*messageapi.Reaction)) (int, error) {
	s.loads.Add(1)
	if s.gate != nil {
		release := make(chan struct{})
		s.gate <- release
		<-release
	}
	return s.ReactionStore.MessageReactions(ctx, id, limit, each)
}

// ownProcess is one API process's own reactions: its near cache and its
// copies, on a client of its own.
type ownProcess struct {
	own   *pagecache.OwnReactions
	store *countingStore
}

// ownFixture is a schema with messages, and the stores on it.
type ownFixture struct {
	db        *postgres.DB
	reactions *postgres.ReactionStore
	ids       []string
	prefix    string
}

func newOwnFixture(t *testing.T, messages int) *ownFixture {
	t.Helper()
	db := postgrestest.NewDB(t)
	f := &ownFixture{db: db, reactions: postgres.NewReactionStore(db), prefix: redistest.NewPrefix(t)}
	store := postgres.NewMessageStore(db)
	for i := range messages {
		id := uuid.Must(uuid.NewV7())
		m := messageapi.Message{ID: id.String(), Text: fmt.Sprint("m", i), UserID: "u", CreatedAt: messageapi.NewTime(time.Now())}
		if _, err := store.CreateMessage(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, m.ID)
	}
	return f
}

// process starts the own reactions of one process, and waits until its
// subscription is confirmed.
func (f *ownFixture) process(t *testing.T, maxAge time.Duration, maxReactions int) *ownProcess {
	t.Helper()
	store := &countingStore{ReactionStore: f.reactions}
	return &ownProcess{own: f.start(t, store, maxAge, maxReactions), store: store}
}

// start starts own reactions on store, and waits until their subscription
// is confirmed.
func (f *ownFixture) start(t *testing.T, store pagecache.OwnReactionStore, maxAge time.Duration, maxReactions int) *pagecache.OwnReactions {
	t.Helper()
	c := redistest.Open(t, redis.Config{Prefix: f.prefix})
	near := pagecache.NewNearCache(pagecache.New(c, pagecache.Config{}), pagecache.NearCacheConfig{MaxAge: maxAge})
	own := pagecache.NewOwnReactions(near, store, pagecache.OwnReactionsConfig{MaxReactions: maxReactions})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { near.Run(ctx); done <- struct{}{} }()
	go func() { own.Run(ctx, time.Second); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	for !near.Live() {
		time.Sleep(time.Millisecond)
	}
	return own
}

// put posts a reaction behind every process's back: nothing is forgotten
// or announced.
func (f *ownFixture) put(t *testing.T, message, user, typ string) {
	t.Helper()
	_, err := f.reactions.PutReaction(context.Background(), messageapi.PutReactionParams{
		ID: uuid.Must(uuid.NewV7()).String(), MessageID: message, UserID: user, Type: typ, Score: 1, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *ownFixture) remove(t *testing.T, message, user, typ string) {
	t.Helper()
	if _, err := f.reactions.DeleteReaction(context.Background(), messageapi.DeleteReactionParams{
		MessageID: message, UserID: user, Type: typ, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// types returns the user's reactions on each of ids as p serves them:
// "type,type|type|..." in the order of ids.
func (p *ownProcess) types(t *testing.T, ids []string, user string) string {
	t.Helper()
	own, err := p.own.OwnReactions(context.Background(), ids, user)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += "|"
		}
		rs, ok := own[id]
		if !ok || rs == nil {
			t.Fatalf("no own reactions for %s", id)
		}
		var typs []string
		for _, r := range rs {
			if r.UserID != user || r.MessageID != id {
				t.Fatalf("%s's reaction on %s is %+v", user, id, r)
			}
			typs = append(typs, r.Type)
		}
		slices.Sort(typs)
		s += fmt.Sprint(typs)
	}
	return s
}

// copyOf reads until p holds a copy of every message.
func (p *ownProcess) copyOf(t *testing.T, ids []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(ids, func(id string) bool { return !p.own.Copied(id) }) {
		p.types(t, ids, "nobody")
		if time.Now().After(deadline) {
			t.Fatal("no copy of the messages after 10s of reads")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOwnReactionsFromCopiesAndAnnouncements: with a copy of every
// message, readers who reacted and readers who did not are answered
// without a read of the store; a writer's process reads its change at
// once, another process as soon as the announcement arrives (the maximum
// age is far off), and only the changed user costs a read.
func TestOwnReactionsFromCopiesAndAnnouncements(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 3)
	for i := range 50 {
		f.put(t, f.ids[0], fmt.Sprint("fan", i), "like")
	}
	f.put(t, f.ids[1], "alice", "love")
	f.put(t, f.ids[1], "alice", "wow")
	a, b := f.process(t, time.Minute, 0), f.process(t, time.Minute, 0)
	a.copyOf(t, f.ids)
	b.copyOf(t, f.ids)

	probes := a.store.probes.Load()
	for _, tt := range []struct{ user, want string }{
		{"alice", "[]|[love wow]|[]"}, {"fan7", "[like]|[]|[]"}, {"nobody", "[]|[]|[]"},
	} {
		if got := a.types(t, f.ids, tt.user); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.user, got, tt.want)
		}
	}
	if n := a.store.probes.Load() - probes; n != 0 {
		t.Errorf("%d reads of the store for messages the process holds copies of", n)
	}

	// alice reacts through a, and deletes through a: a tells at once.
	f.put(t, f.ids[0], "alice", "clap")
	a.own.Forget(context.Background(), f.ids[0], "alice")
	if got := a.types(t, f.ids, "alice"); got != "[clap]|[love wow]|[]" {
		t.Errorf("alice on the writer's process right after her post: %s", got)
	}
	f.remove(t, f.ids[1], "alice", "wow")
	a.own.Forget(context.Background(), f.ids[1], "alice")
	if got := a.types(t, f.ids, "alice"); got != "[clap]|[love]|[]" {
		t.Errorf("alice on the writer's process right after her delete: %s", got)
	}
	// b learns it from the announcements, long before its maximum age.
	deadline := time.Now().Add(2 * time.Second)
	for b.types(t, f.ids, "alice") != "[clap]|[love]|[]" {
		if time.Now().After(deadline) {
			t.Fatalf("b still serves %s two seconds after the announcements", b.types(t, f.ids, "alice"))
		}
		time.Sleep(time.Millisecond)
	}
	// Once read again, alice's reactions are held again; other users were
	// never forgotten.
	probes = b.store.probes.Load()
	b.types(t, f.ids, "alice")
	b.types(t, f.ids, "fan7")
	if n := b.store.probes.Load() - probes; n != 0 {
		t.Errorf("%d reads of the store once alice's reactions were read again", n)
	}
}

// TestOwnReactionsLoadRacingAChange: a change announced while a load of
// the message runs is not hidden by the load's older snapshot.
func TestOwnReactionsLoadRacingAChange(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 1)
	id := f.ids[0]
	f.put(t, id, "alice", "like")
	p := f.process(t, time.Minute, 0)
	gate := make(chan chan struct{})
	p.store.gate = gate
	read := func(o *pagecache.OwnReactions) <-chan error {
		done := make(chan error, 1)
		go func() { _, err := o.OwnReactions(context.Background(), f.ids, "alice"); done <- err }()
		return done
	}
	p.types(t, f.ids, "alice")
	second := read(p.own) // the second read starts the load
	release := <-gate     // the load waits before its snapshot...
	f.remove(t, id, "alice", "like")
	p.own.Forget(context.Background(), id, "alice")
	close(release) // ...which therefore holds the delete; see the next case
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	for !p.own.Copied(id) {
		time.Sleep(time.Millisecond)
	}
	p.store.gate = nil
	if got := p.types(t, f.ids, "alice"); got != "[]" {
		t.Errorf("after the delete: %s", got)
	}

	// Now the load takes its snapshot before a change that is announced
	// before the load installs its copy.
	gated := &gatedSnapshotStore{ReactionStore: f.reactions, snapshot: make(chan struct{}), resume: make(chan struct{})}
	q := f.start(t, gated, time.Minute, 0)
	if err := <-read(q); err != nil {
		t.Fatal(err)
	}
	if err := <-read(q); err != nil { // starts the load
		t.Fatal(err)
	}
	<-gated.snapshot // the load has read every reaction: alice has none
	f.put(t, id, "alice", "love")
	q.Forget(context.Background(), id, "alice")
	close(gated.resume)
	for !q.Copied(id) {
		time.Sleep(time.Millisecond)
	}
	own, err := q.OwnReactions(context.Background(), f.ids, "alice")
	if err != nil || len(own[id]) != 1 || own[id][0].Type != "love" {
		t.Errorf("after a post announced during the load: %+v, %v; want alice's love", own[id], err)
	}
}

// gatedSnapshotStore reads a message's reactions, then waits before it
// hands them over: the load's snapshot is taken, and older than what
// follows.
type gatedSnapshotStore struct {
	*postgres.ReactionStore
	snapshot, resume chan struct{}
	once             atomic.Bool
}

func (s *gatedSnapshotStore) MessageReactions(ctx context.Context, id string, limit int, each func(*messageapi.Reaction)) (int, error) {
	var rs []messageapi.Reaction
	n, err := s.ReactionStore.MessageReactions(ctx, id, limit, func(r *messageapi.Reaction) { rs = append(rs, *r) })
	if s.once.CompareAndSwap(false, true) {
		close(s.snapshot)
		<-s.resume
	}
	for i := range rs {
		each(&rs[i])
	}
	return n, err
}

// TestOwnReactionsMaxAge: a change no announcement told of is served from
// a copy only until the maximum age after the load that made it.
func TestOwnReactionsMaxAge(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 1)
	const maxAge = 400 * time.Millisecond
	p := f.process(t, maxAge, 0)
	p.copyOf(t, f.ids)
	f.put(t, f.ids[0], "alice", "like") // behind its back
	changed := time.Now()
	var got string
	for got != "[like]" {
		got = p.types(t, f.ids, "alice")
		if time.Since(changed) > maxAge+100*time.Millisecond {
			t.Fatalf("%v after an unannounced change: %s; the maximum age is %v", time.Since(changed), got, maxAge)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOwnReactionsBounds: a message with more reactions than a copy may
// hold is read from the store, and the copies never hold more than the
// bound.
func TestOwnReactionsBounds(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 4)
	for i := range 6 {
		f.put(t, f.ids[0], fmt.Sprint("fan", i), "like") // more than half the bound
	}
	for _, id := range f.ids[1:] {
		for i := range 3 {
			f.put(t, id, fmt.Sprint("fan", i), "like")
		}
	}
	p := f.process(t, time.Minute, 10)
	for range 20 {
		if got := p.types(t, f.ids, "fan4"); got != "[like]|[]|[]|[]" {
			t.Fatalf("fan4: %s", got)
		}
		if got := p.types(t, f.ids, "fan1"); got != "[like]|[like]|[like]|[like]" {
			t.Fatalf("fan1: %s", got)
		}
		if held := p.own.Held(); held > 10 {
			t.Fatalf("%d reactions held, the bound is 10", held)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if p.own.Copied(f.ids[0]) {
		t.Error("a message with more reactions than a copy may hold was copied")
	}
	if p.own.Held() == 0 {
		t.Error("nothing was copied")
	}
}

// TestOwnReactionsWithoutSubscription: while the near cache's
// subscription is down, every read goes to the store.
func TestOwnReactionsWithoutSubscription(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 2)
	f.put(t, f.ids[1], "alice", "like")
	c, err := redis.Open(redis.Config{URL: "redis://127.0.0.1:1/0", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	near := pagecache.NewNearCache(pagecache.New(c, pagecache.Config{}), pagecache.NearCacheConfig{MaxAge: time.Minute})
	store := &countingStore{ReactionStore: f.reactions}
	p := &ownProcess{own: pagecache.NewOwnReactions(near, store, pagecache.OwnReactionsConfig{}), store: store}
	for i := range 5 {
		if got := p.types(t, f.ids, "alice"); got != "[]|[like]" {
			t.Fatalf("read %d: %s", i, got)
		}
	}
	if n := store.probes.Load(); n != 5 || store.loads.Load() != 0 || p.own.Copied(f.ids[0]) {
		t.Errorf("%d store reads and %d loads; want 5 and none", n, store.loads.Load())
	}
}

// TestOwnReactionsForgetADeletedMessage: a delete removes every reaction of
// the message. The deleting process drops its copy at once, another one
// as soon as the announcement arrives, and neither serves a reaction of
// the tombstone again.
func TestOwnReactionsForgetADeletedMessage(t *testing.T) {
	t.Parallel()
	f := newOwnFixture(t, 2)
	f.put(t, f.ids[0], "alice", "like")
	f.put(t, f.ids[1], "alice", "love")
	a, b := f.process(t, time.Minute, 0), f.process(t, time.Minute, 0)
	a.copyOf(t, f.ids)
	b.copyOf(t, f.ids)

	if _, err := postgres.NewMessageStore(f.db).DeleteMessage(context.Background(), messageapi.MessageChange{
		ID: f.ids[0], UserID: "u", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a.own.ForgetMessage(context.Background(), f.ids[0])
	if got := a.types(t, f.ids, "alice"); got != "[]|[love]" {
		t.Errorf("alice on the deleting process right after the delete: %s", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.types(t, f.ids, "alice") != "[]|[love]" {
		if time.Now().After(deadline) {
			t.Fatalf("b still serves %s two seconds after the announcement", b.types(t, f.ids, "alice"))
		}
		time.Sleep(time.Millisecond)
	}
	if !b.own.Copied(f.ids[1]) {
		t.Error("the copy of the other message went with the deleted one")
	}
}
