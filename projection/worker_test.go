package projection_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/command"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
	"messageapi/projection"
	"messageapi/query"
	"messageapi/redis"
	"messageapi/redis/feed"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
	"messageapi/redis/stream"
)

// fixture is the whole pipeline on a schema and key prefix of its own: the
// real write commands, the real stream and cache, and workers to start.
type fixture struct {
	t         *testing.T
	db        *postgres.DB
	stream    *stream.Stream
	rc        *redis.Client
	cache     *pagecache.Cache
	feed      *feed.Feed
	projector *postgres.Projector
	messages  *postgres.MessageStore
	create    *command.CreateMessageHandler
	add       *command.AddReactionHandler
	remove    *command.RemoveReactionHandler
	reg       *prometheus.Registry
	metrics   *projection.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, redistest.NewClient(t), 1)
}

// newFixtureOn is newFixture on the Redis of rc, with a stream of the
// given partitions.
func newFixtureOn(t *testing.T, rc *redis.Client, partitions int) *fixture {
	t.Helper()
	db := postgrestest.NewDB(t)
	reactionStream := stream.New(rc, stream.Config{Partitions: partitions})
	cache := pagecache.New(rc, pagecache.Config{TTL: time.Minute})
	messages := postgres.NewMessageStore(db)
	reactions := postgres.NewReactionStore(db)
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	return &fixture{
		t: t, db: db, stream: reactionStream, rc: rc, cache: cache, feed: feed.New(rc, feed.Config{}),
		projector: postgres.NewProjector(db),
		messages:  messages,
		create:    command.NewCreateMessageHandler(messages, cache, log),
		add:       command.NewAddReactionHandler(reactions, reactionStream, log, command.AddReactionConfig{}),
		remove:    command.NewRemoveReactionHandler(reactions, reactionStream, log),
		reg:       reg,
		metrics:   projection.NewMetrics(reg),
	}
}

// testConfig makes every background task run often, so tests converge in
// well under a second; sweepMinAge decides whether the sweeper may help.
func testConfig(consumer string, sweepMinAge time.Duration) projection.Config {
	return projection.Config{
		Consumer: consumer, BatchSize: 100, Block: 50 * time.Millisecond,
		// A fold may take seconds on a loaded machine; a peer must not claim
		// its entries meanwhile. Tests of claiming shorten both (quickClaims).
		ClaimInterval: 100 * time.Millisecond, ClaimMinIdle: 6 * time.Second, FoldTimeout: 5 * time.Second, MaxDeliveries: 5,
		SweepInterval: 100 * time.Millisecond, SweepMinAge: sweepMinAge, StatsInterval: 100 * time.Millisecond,
		RetryMax: 200 * time.Millisecond,
	}
}

// deps returns the worker's dependencies on the fixture, with stream as
// its one partition.
func (f *fixture) deps(stream projection.Stream) projection.Deps {
	return projection.Deps{
		Store: f.projector, Partitions: []projection.Stream{stream}, Cache: f.cache, Feed: f.feed,
		Log: slog.New(slog.DiscardHandler), Metrics: f.metrics,
	}
}

// consumer returns the fixture's stream as the consumer cfg names.
func (f *fixture) consumer(cfg projection.Config) *stream.Consumer {
	return f.stream.Consumer(0, cmp.Or(cfg.Group, projection.DefaultConfig().Group), cfg.Consumer)
}

// quickClaims makes a peer claim entries left pending after 600ms, for
// tests about claiming, whose folds are small.
func quickClaims(cfg projection.Config) projection.Config {
	cfg.ClaimMinIdle, cfg.FoldTimeout = 600*time.Millisecond, 500*time.Millisecond
	return cfg
}

// startWorker runs a worker until the returned stop is called (or the test
// ends), on the fixture's stream unless another is given.
func (f *fixture) startWorker(cfg projection.Config, stream projection.Stream) (stop func()) {
	f.t.Helper()
	if stream == nil {
		stream = f.consumer(cfg)
	}
	w, err := projection.NewWorker(f.deps(stream), cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.run(w, cfg.Consumer)
}

// run runs w until the returned stop is called, or the test ends.
func (f *fixture) run(w *projection.Worker, name string) (stop func()) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				f.t.Errorf("worker %s: %v", name, err)
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) message() string {
	f.t.Helper()
	v, _, err := f.create.Handle(context.Background(), command.CreateMessage{Text: "hello", UserID: "author"})
	if err != nil {
		f.t.Fatal(err)
	}
	return v.ID
}

func (f *fixture) react(messageID, user, typ string, score int) messageapi.Reaction {
	f.t.Helper()
	r, _, err := f.add.Handle(context.Background(), command.AddReaction{MessageID: messageID, UserID: user, Type: typ, Score: &score})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) view(messageID string) messageapi.MessageView {
	f.t.Helper()
	v, err := f.messages.GetMessage(context.Background(), messageID)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// truth is the aggregate over a message's live reactions: what its view
// must converge to.
type truth struct {
	count          int64
	counts, scores map[string]int64
	// times, when set, are the first and latest created_at of each type's
	// live reactions: what the view's groups must hold.
	times map[string][2]messageapi.Time
}

func (f *fixture) truth(messageID string) truth {
	f.t.Helper()
	tr := truth{counts: map[string]int64{}, scores: map[string]int64{}, times: map[string][2]messageapi.Time{}}
	rows, err := f.db.Pool().Query(context.Background(), `
		select type, count(*), sum(score), min(created_at), max(created_at) from reactions
		where message_id = $1 and deleted_at is null group by type`, messageID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var c, s int64
		var first, last time.Time
		if err := rows.Scan(&typ, &c, &s, &first, &last); err != nil {
			f.t.Fatal(err)
		}
		tr.count += c
		tr.counts[typ], tr.scores[typ] = c, s
		tr.times[typ] = [2]messageapi.Time{messageapi.NewTime(first), messageapi.NewTime(last)}
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return tr
}

func matches(v messageapi.MessageView, tr truth) bool {
	if v.ReactionCount != tr.count || !maps.Equal(v.ReactionCounts, tr.counts) || !maps.Equal(v.ReactionScores, tr.scores) {
		return false
	}
	if tr.times == nil {
		return true
	}
	if len(v.ReactionGroups) != len(tr.times) {
		return false
	}
	for typ, g := range v.ReactionGroups {
		want, ok := tr.times[typ]
		if !ok || g.Count != tr.counts[typ] || g.SumScores != tr.scores[typ] ||
			!g.FirstReactionAt.Equal(want[0].Time) || !g.LastReactionAt.Equal(want[1].Time) {
			return false
		}
	}
	return true
}

func describe(v messageapi.MessageView, tr truth) string {
	return fmt.Sprintf("view count %d %v scores %v groups %v; truth count %d %v scores %v times %v",
		v.ReactionCount, v.ReactionCounts, v.ReactionScores, v.ReactionGroups, tr.count, tr.counts, tr.scores, tr.times)
}

// waitConverged polls until every message's view equals the aggregate
// over its reactions and nothing is left unprojected.
func (f *fixture) waitConverged(timeout time.Duration, messageIDs ...string) {
	f.t.Helper()
	eventually(f.t, timeout, func() (bool, string) {
		if lag, err := f.projector.Lag(context.Background()); err != nil || lag > 0 {
			return false, fmt.Sprintf("projection lag %v (%v)", lag, err)
		}
		for _, id := range messageIDs {
			if v, tr := f.view(id), f.truth(id); !matches(v, tr) {
				return false, id + ": " + describe(v, tr)
			}
		}
		return true, ""
	})
}

// metric returns the value of a counter or gauge in the fixture's registry.
func (f *fixture) metric(name string) float64 {
	f.t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	f.t.Fatalf("no metric %s", name)
	return 0
}

// pending returns how many entries the default group holds unacknowledged.
func (f *fixture) pending() int64 {
	f.t.Helper()
	b, err := f.stream.Consumer(0, projection.DefaultConfig().Group, "observer").Backlog(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Pending
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged within %v: %s", timeout, state)
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

const noSweep = time.Hour // keeps the sweeper out of a test about the stream

func TestDuplicateDeliveryIsCountedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.message()
	r := f.react(m, "alice", "like", 3)
	f.startWorker(testConfig("w1", noSweep), nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		return f.metric("messageapi_projection_events_total") == 1, "first delivery not folded"
	})

	// The same change arrives again, as after a redelivery.
	dup := messageapi.ReactionChanged{ReactionID: r.ID, MessageID: m, Version: 1, ChangedAt: r.UpdatedAt.Time}
	if err := f.stream.Publish(context.Background(), dup); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		return f.metric("messageapi_projection_events_total") == 2 && f.pending() == 0, "duplicate not handled"
	})
	v := f.view(m)
	if !matches(v, truth{count: 1, counts: map[string]int64{"like": 1}, scores: map[string]int64{"like": 3}}) || v.Version != 1 {
		t.Fatalf("after a duplicate: version %d, %s", v.Version, describe(v, f.truth(m)))
	}
}

// capture collects events instead of appending them, so a test can deliver
// them in an order of its choosing.
type capture struct {
	mu     sync.Mutex
	events []messageapi.ReactionChanged
}

func (c *capture) Publish(_ context.Context, e messageapi.ReactionChanged) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	return nil
}

func TestReorderedDeliveryConverges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var events capture
	reactions := postgres.NewReactionStore(f.db)
	log := slog.New(slog.DiscardHandler)
	add := command.NewAddReactionHandler(reactions, &events, log, command.AddReactionConfig{})
	remove := command.NewRemoveReactionHandler(reactions, &events, log)
	m := f.message()
	one, five := 1, 5
	for _, cmd := range []command.AddReaction{
		{MessageID: m, UserID: "alice", Type: "like", Score: &one},  // 0: insert
		{MessageID: m, UserID: "alice", Type: "like", Score: &five}, // 1: update
		{MessageID: m, UserID: "bob", Type: "love", Score: &one},    // 2: insert
	} {
		if _, _, err := add.Handle(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := remove.Handle(ctx, command.RemoveReaction{MessageID: m, UserID: "bob", Type: "love"}); err != nil { // 3: delete
		t.Fatal(err)
	}
	f.startWorker(testConfig("w1", noSweep), nil)

	// The update and the delete arrive before the inserts they follow.
	var version int64
	for i, idx := range []int{1, 3, 0, 2} {
		if err := f.stream.Publish(ctx, events.events[idx]); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() (bool, string) {
			return f.metric("messageapi_projection_events_total") == float64(i+1), "event not folded"
		})
		if i == 1 { // after the update and the delete, before either insert
			v := f.view(m)
			if !matches(v, truth{count: 1, counts: map[string]int64{"like": 1}, scores: map[string]int64{"like": 5}}) {
				t.Fatalf("after the early update and delete: %s", describe(v, f.truth(m)))
			}
			version = v.Version
		}
	}
	v := f.view(m)
	if !matches(v, f.truth(m)) || v.ReactionCount != 1 || v.ReactionScores["like"] != 5 {
		t.Fatalf("final: %s", describe(v, f.truth(m)))
	}
	if v.Version != version {
		t.Errorf("version = %d, was %d; the late inserts must change nothing", v.Version, version)
	}
}

func TestLostEntriesAreSwept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m1, m2 := f.message(), f.message()
	for i := range 30 {
		f.react(m1, fmt.Sprintf("u%d", i), "like", i+1)
		f.react(m2, fmt.Sprintf("u%d", i), "clap", 2)
	}
	f.react(m1, "u0", "like", 100) // a re-score
	if err := f.remove.Handle(ctx, command.RemoveReaction{MessageID: m2, UserID: "u1", Type: "clap"}); err != nil {
		t.Fatal(err)
	}
	// The stream, and the consumer group with it, is lost after the commits.
	if err := f.rc.Redis().Del(ctx, f.stream.Key(0)).Err(); err != nil {
		t.Fatal(err)
	}
	f.startWorker(testConfig("w1", 200*time.Millisecond), nil)
	f.waitConverged(15*time.Second, m1, m2)
	// The sweeper folds rows, each in its latest state: 60 rows changed.
	if swept := f.metric("messageapi_projection_swept_total"); swept != 60 {
		t.Errorf("swept %v rows, want 60 (every changed row, since no entry survived)", swept)
	}
	if v := f.view(m1); v.ReactionCount != 30 || v.ReactionScores["like"] != 564 {
		t.Errorf("m1: %s", describe(v, f.truth(m1)))
	}
}

// crashingStream is the real stream, except that Ack kills its worker
// instead: the fold has committed, the entries are not acknowledged.
type crashingStream struct {
	*stream.Consumer
	crash   context.CancelFunc
	crashed chan struct{}
	once    sync.Once
}

func (s *crashingStream) Ack(context.Context, []string) error {
	s.once.Do(func() { s.crash(); close(s.crashed) })
	return errors.New("worker crashed before ack")
}

func TestCrashAfterCommitBeforeAck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.message()
	for i := range 20 {
		f.react(m, fmt.Sprintf("u%d", i), "like", 2)
	}

	crashAndCheck := func(consumer string) {
		t.Helper()
		d := f.deps(nil)
		d.Partitions = nil
		w, err := projection.NewWorker(d, quickClaims(testConfig(consumer, noSweep)))
		if err == nil || w != nil {
			t.Fatal("NewWorker accepted a nil stream")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cs := &crashingStream{Consumer: f.stream.Consumer(0, "projection", consumer), crash: cancel, crashed: make(chan struct{})}
		w, err = projection.NewWorker(f.deps(cs), quickClaims(testConfig(consumer, noSweep)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case <-cs.crashed:
		case <-time.After(10 * time.Second):
			t.Fatal("worker never reached ack")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if f.pending() == 0 {
			t.Fatal("the crashed worker's entries are not pending")
		}
	}

	// A worker dies between commit and ack, and restarts under its name.
	crashAndCheck("w1")
	if v, tr := f.view(m), f.truth(m); !matches(v, tr) {
		t.Fatalf("the fold before the crash did not commit: %s", describe(v, tr))
	}
	version := f.view(m).Version
	stop := f.startWorker(testConfig("w1", noSweep), nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		return f.pending() == 0, "restarted worker did not finish its pending entries"
	})
	if v := f.view(m); !matches(v, f.truth(m)) || v.Version != version {
		t.Fatalf("after restart: version %d (was %d), %s", v.Version, version, describe(v, f.truth(m)))
	}
	stop()

	// Another dies the same way and never comes back: a peer claims its
	// entries once they have been idle long enough.
	for i := range 10 {
		f.react(m, fmt.Sprintf("v%d", i), "love", 1)
	}
	crashAndCheck("w2")
	version = f.view(m).Version
	f.startWorker(quickClaims(testConfig("w1", noSweep)), nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		return f.pending() == 0, "w1 did not claim w2's entries"
	})
	if v := f.view(m); !matches(v, f.truth(m)) || v.ReactionCount != 30 || v.Version != version {
		t.Fatalf("after the claim: version %d (was %d), %s", v.Version, version, describe(v, f.truth(m)))
	}
	if f.metric("messageapi_projection_redeliveries_total") == 0 {
		t.Error("no redelivery counted")
	}
}

// write runs fn(i) for i in [0, n) on workers goroutines.
func write(t *testing.T, workers, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestHotMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m := f.message()
	f.startWorker(testConfig("w1", noSweep), nil)
	one := 1
	write(t, 32, 2000, func(i int) error {
		_, _, err := f.add.Handle(ctx, command.AddReaction{MessageID: m, UserID: fmt.Sprintf("user%d", i), Type: []string{"like", "clap", "love"}[i%3], Score: &one})
		return err
	})
	write(t, 32, 1000, func(i int) error {
		score := i%50 + 2
		_, _, err := f.add.Handle(ctx, command.AddReaction{MessageID: m, UserID: fmt.Sprintf("user%d", 2*i), Type: []string{"like", "clap", "love"}[(2*i)%3], Score: &score})
		return err
	})
	f.waitConverged(60*time.Second, m)
	v := f.view(m)
	if v.ReactionCount != 2000 {
		t.Fatalf("count = %d, want 2000", v.ReactionCount)
	}
	// The view can converge before the worker has counted its last
	// entries (a later entry finds its change folded already).
	eventually(t, 10*time.Second, func() (bool, string) {
		events := f.metric("messageapi_projection_events_total")
		return events == 3000, fmt.Sprintf("%v events folded, want 3000", events)
	})
	events, written := f.metric("messageapi_projection_events_total"), f.metric("messageapi_projection_views_written_total")
	if events != 3000 || written >= events {
		t.Errorf("%v events wrote the hot view %v times; want 3000 events, fewer writes (batched)", events, written)
	}
	if len(v.Reactions) != messageapi.InlineReactions {
		t.Errorf("%d inline reactions, want %d", len(v.Reactions), messageapi.InlineReactions)
	}
}

func TestTwoWorkersShareTheStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	hot := f.message()
	spread := make([]string, 20)
	for i := range spread {
		spread[i] = f.message()
	}
	f.startWorker(testConfig("w1", noSweep), nil)
	f.startWorker(testConfig("w2", noSweep), nil)
	write(t, 16, 3000, func(i int) error {
		m, user, typ := spread[i%len(spread)], fmt.Sprintf("u%d", i%60), []string{"like", "love"}[i%2]
		if i%3 == 0 {
			m = hot
		}
		switch i % 10 {
		case 9: // deletes; some find nothing to delete
			err := f.remove.Handle(ctx, command.RemoveReaction{MessageID: m, UserID: user, Type: typ})
			if messageapi.ErrorCode(err) == messageapi.ENOTFOUND {
				return nil
			}
			return err
		default:
			score := i%7 + 1
			_, _, err := f.add.Handle(ctx, command.AddReaction{MessageID: m, UserID: user, Type: typ, Score: &score})
			return err
		}
	})
	f.waitConverged(60*time.Second, append(spread, hot)...)
	if errs := f.metric("messageapi_projection_errors_total"); errs != 0 {
		t.Errorf("%v failed folds; two workers must not deadlock or conflict", errs)
	}
	if f.pending() != 0 {
		t.Errorf("%d entries left pending", f.pending())
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	rdb := f.rc.Redis()
	m := f.message()
	f.react(m, "alice", "like", 4)
	if err := f.stream.Consumer(0, "projection", "ghost").EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	// The reaction's entry went to a consumer that died, and has been
	// delivered far more often than allowed.
	got, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: "projection", Consumer: "ghost", Streams: []string{f.stream.Key(0), ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
		t.Fatalf("ghost read = %v, %v", got, err)
	}
	if err := rdb.Do(ctx, "XCLAIM", f.stream.Key(0), "projection", "ghost", 0, got[0].Messages[0].ID, "RETRYCOUNT", 50).Err(); err != nil {
		t.Fatal(err)
	}
	// And a malformed entry arrives.
	if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: f.stream.Key(0), Values: []any{"junk", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}

	f.startWorker(quickClaims(testConfig("w1", 200*time.Millisecond)), nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		dead := f.metric("messageapi_projection_dead_lettered_total")
		return dead == 2 && f.pending() == 0, fmt.Sprintf("%v dead-lettered, %d pending", dead, f.pending())
	})
	if n, err := rdb.XLen(ctx, f.stream.DeadLetterKey(0)).Result(); err != nil || n != 2 {
		t.Errorf("dead-letter stream holds %d entries (%v), want 2", n, err)
	}
	// The poisoned entry's change is not lost: the sweeper folds it.
	f.waitConverged(10*time.Second, m)
	if v := f.view(m); v.ReactionCount != 1 || v.ReactionScores["like"] != 4 {
		t.Errorf("view: %s", describe(v, f.truth(m)))
	}
}

func TestFoldRefreshesCachedPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m := f.message()
	// The first read of page 1 fills the cache from PostgreSQL.
	if _, err := query.NewListMessagesHandler(f.messages, postgres.NewReactionStore(f.db), f.cache, query.ListMessagesConfig{}).Handle(ctx, query.ListMessages{}); err != nil {
		t.Fatal(err)
	}
	notCached := func(context.Context, messageapi.MessageRange) ([]messageapi.EncodedView, error) {
		return nil, errors.New("not served by the cache")
	}
	f.startWorker(testConfig("w1", noSweep), nil)
	f.react(m, "alice", "like", 7)
	eventually(t, 10*time.Second, func() (bool, string) {
		views, err := f.cache.Latest(ctx, messageapi.MessageRange{Limit: 1}, notCached)
		if err != nil || len(views) != 1 {
			return false, fmt.Sprintf("page: %v %v", views, err)
		}
		var v messageapi.MessageView
		if err := json.Unmarshal(views[0].JSON, &v); err != nil {
			return false, err.Error()
		}
		return v.ReactionCount == 1 && v.ReactionScores["like"] == 7 && len(v.Reactions) == 1,
			fmt.Sprintf("cached view %s", views[0].JSON)
	})
}

func TestReconcileReportsAndRepairsDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	good, bad := f.message(), f.message()
	f.react(good, "a", "like", 1)
	f.react(bad, "a", "like", 2)
	stop := f.startWorker(testConfig("w1", noSweep), nil)
	f.waitConverged(10*time.Second, good, bad)
	stop()
	if _, err := f.db.Pool().Exec(ctx, `update message_views set reaction_count = 5, reaction_groups = jsonb_set(reaction_groups, '{like,1}', '50') where message_id = $1`, bad); err != nil {
		t.Fatal(err)
	}
	report, err := projection.Reconcile(ctx, f.projector, f.cache, slog.New(slog.DiscardHandler), 1)
	if err != nil {
		t.Fatal(err)
	}
	if report.Checked != 2 || report.Rebuilt != 1 || fmt.Sprint(report.Drifted) != fmt.Sprint([]string{bad}) {
		t.Fatalf("report = %+v; want 2 checked, 1 rebuilt, [%s] drifted", report, bad)
	}
	f.waitConverged(time.Second, good, bad)
}

// TestEnforceUniqueKeepsCountsExact: users post unique reactions of
// several types at once; each is left with one reaction, and the counts
// equal the reactions that stand, the removed ones included.
func TestEnforceUniqueKeepsCountsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m := f.message()
	f.startWorker(testConfig("w1", noSweep), nil)
	types := []string{"like", "love", "wow", "sad"}
	write(t, 16, 400, func(i int) error {
		score := i%5 + 1
		_, _, err := f.add.Handle(ctx, command.AddReaction{
			MessageID: m, UserID: fmt.Sprintf("u%d", i%20), Type: types[(i*7)%len(types)], Score: &score, EnforceUnique: true,
		})
		return err
	})
	f.waitConverged(30*time.Second, m)
	if v := f.view(m); v.ReactionCount != 20 {
		t.Errorf("%d reactions counted, want 20: one per user", v.ReactionCount)
	}
}

// TestFoldsTellTheLiveFeed: each fold appends an event per changed
// reaction, after its commit, with the message's counts as folded; the
// sweeper's folds too. A reaction posted and deleted between folds makes
// none.
func TestFoldsTellTheLiveFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	m := f.message()
	events := func(want int) []messageapi.Event {
		t.Helper()
		var got []messageapi.Event
		eventually(t, 10*time.Second, func() (bool, string) {
			entries, err := f.feed.Read(ctx, "0-0", 100, 0)
			if err != nil {
				return false, err.Error()
			}
			got = got[:0]
			for _, e := range entries {
				var ev messageapi.Event
				if err := json.Unmarshal(e.Data, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Type != e.Type || ev.MessageID != e.MessageID || !e.At.Equal(ev.At.Time) {
					t.Fatalf("entry %+v holds event %+v", e, ev)
				}
				got = append(got, ev)
			}
			return len(got) >= want, fmt.Sprintf("%d events", len(got))
		})
		return got
	}
	stop := f.startWorker(testConfig("w1", time.Hour), nil)
	r := f.react(m, "bob", "like", 2)
	got := events(1)
	if e := got[0]; e.Type != messageapi.ReactionNew || e.Reaction.ID != r.ID || e.Reaction.UserID != "bob" || e.Reaction.Score != 2 ||
		e.Counts == nil || e.Counts.ReactionCount != 1 || e.Counts.ReactionScores["like"] != 2 || e.Counts.ReactionGroups["like"].Count != 1 {
		t.Fatalf("first event = %+v (counts %+v)", e, e.Counts)
	}
	f.react(m, "bob", "like", 5)
	if e := events(2)[1]; e.Type != messageapi.ReactionUpdated || e.Reaction.Score != 5 || e.Counts.ReactionScores["like"] != 5 || e.Counts.Version <= got[0].Counts.Version {
		t.Errorf("second event = %+v (counts %+v)", e, e.Counts)
	}
	if err := f.remove.Handle(ctx, command.RemoveReaction{MessageID: m, UserID: "bob", Type: "like"}); err != nil {
		t.Fatal(err)
	}
	if e := events(3)[2]; e.Type != messageapi.ReactionDeleted || e.Reaction.ID != r.ID || e.Counts.ReactionCount != 0 || len(e.Counts.ReactionCounts) != 0 {
		t.Errorf("third event = %+v (counts %+v)", e, e.Counts)
	}
	stop()

	// With no worker consuming, one reaction is posted and deleted, and
	// another posted; the stream is then lost, so the sweeper folds both
	// rows at once.
	f.react(m, "carol", "love", 1)
	if err := f.remove.Handle(ctx, command.RemoveReaction{MessageID: m, UserID: "carol", Type: "love"}); err != nil {
		t.Fatal(err)
	}
	dave := f.react(m, "dave", "clap", 3)
	if err := f.rc.Redis().Del(ctx, f.stream.Key(0)).Err(); err != nil {
		t.Fatal(err)
	}
	f.startWorker(testConfig("w2", 100*time.Millisecond), nil)
	f.waitConverged(10*time.Second, m)
	time.Sleep(300 * time.Millisecond) // an event too many would show
	got = events(4)
	if len(got) != 4 || got[3].Type != messageapi.ReactionNew || got[3].Reaction.ID != dave.ID || got[3].Counts.ReactionCount != 1 {
		t.Errorf("after the sweep: %d events, the last %+v; want one reaction.new of dave's", len(got), got[len(got)-1])
	}
}
