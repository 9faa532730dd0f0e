package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"messageapi"
	"messageapi/postgres"
)

// groupStore returns a GroupCommitStore on the fixture's database and its
// metrics registry; run starts its committers until the test ends.
func groupStore(t *testing.T, f *storeFixture, cfg postgres.GroupCommitConfig) (s *postgres.GroupCommitStore, reg *prometheus.Registry, run func()) {
	t.Helper()
	reg = prometheus.NewRegistry()
	s = postgres.NewGroupCommitStore(f.db, cfg, postgres.NewGroupCommitMetrics(reg), slog.New(slog.DiscardHandler))
	run = func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return s, reg, run
}

// outcome is what one write got.
type outcome struct {
	put messageapi.PutReactionResult
	del messageapi.DeleteReactionResult
	err error
}

// TestGroupCommitAnswersEachWriteOfABatch queues writes one after another
// before any committer runs, so that they share one transaction, and
// checks that each gets the answer it would get alone: an unknown message
// or reaction fails only its own write, the same key twice is applied in
// arrival order, a writer that left before the batch started is not
// written, and a write that breaks a constraint fails alone.
func TestGroupCommitAnswersEachWriteOfABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	existing := f.put(t, m, "dave", "wow", 4)
	s, reg, run := groupStore(t, f, postgres.GroupCommitConfig{MaxBatch: 64, Committers: 1})

	unknown := uuid.Must(uuid.NewV7()).String()
	leaving, leave := context.WithCancel(ctx)
	writes := []struct {
		name string
		ctx  context.Context
		do   func(ctx context.Context) outcome
	}{
		{"first like", ctx, putWrite(s, putParams(m, "bob", "like", 2))},
		{"unknown message", ctx, putWrite(s, putParams(unknown, "bob", "like", 1))},
		{"like again", ctx, putWrite(s, putParams(m, "bob", "like", 7))},
		{"writer leaves", leaving, putWrite(s, putParams(m, "erin", "clap", 1))},
		{"delete unknown reaction", ctx, delWrite(s, m, "carol", "love")},
		{"delete on unknown message", ctx, delWrite(s, unknown, "carol", "love")},
		{"delete existing", ctx, delWrite(s, m, "dave", "wow")},
		{"love", ctx, putWrite(s, putParams(m, "carol", "love", 3))},
	}
	got := make([]outcome, len(writes))
	answered := make([]chan struct{}, len(writes))
	for i, w := range writes {
		answered[i] = make(chan struct{})
		go func() { defer close(answered[i]); got[i] = w.do(w.ctx) }()
		for s.Queued() < i+1 { // each in turn: arrival order is the order above
			time.Sleep(time.Millisecond)
		}
	}
	leave()
	<-answered[3] // the leaving writer has its answer before the batch starts
	run()
	for _, a := range answered {
		<-a
	}

	check := func(i int, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: got %+v", writes[i].name, got[i])
		}
	}
	check(0, got[0].err == nil && got[0].put.Created && got[0].put.Reaction.Score == 2 && got[0].put.Version == 1)
	check(1, messageapi.ErrorCode(got[1].err) == messageapi.ENOTFOUND)
	check(2, got[2].err == nil && !got[2].put.Created && got[2].put.Reaction.Score == 7 && got[2].put.Version == 2 &&
		got[2].put.Reaction.ID == got[0].put.Reaction.ID)
	check(3, errors.Is(got[3].err, context.Canceled))
	check(4, messageapi.ErrorCode(got[4].err) == messageapi.ENOTFOUND && messageapi.ErrorMessage(got[4].err) == "reaction not found")
	check(5, messageapi.ErrorCode(got[5].err) == messageapi.ENOTFOUND && messageapi.ErrorMessage(got[5].err) == "message not found")
	check(6, got[6].err == nil && got[6].del.ReactionID == existing && got[6].del.Version == 2)
	check(7, got[7].err == nil && got[7].put.Created)
	if n := testutil.CollectAndCount(reg, "messageapi_write_batch_size"); n != 1 {
		t.Errorf("%d batch-size series", n)
	}
	if sum := histogramCount(t, reg, "messageapi_write_batch_size"); sum != 1 {
		t.Errorf("%d batches, want the 7 writes in one", sum)
	}

	// What PostgreSQL holds: bob's like at 7, carol's love, no clap of
	// erin's, dave's wow deleted.
	var live []string
	rows, err := f.db.Pool().Query(ctx, `select user_id || ':' || type || ':' || score from reactions where deleted_at is null order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		live = append(live, s)
	}
	if fmt.Sprint(live) != "[bob:like:7 carol:love:3]" {
		t.Errorf("live reactions = %v", live)
	}

	// A write that fails the transaction (a score the table refuses, which
	// the command layer would never send) fails alone.
	var wg2 sync.WaitGroup
	bad, good := outcome{}, outcome{}
	wg2.Go(func() { bad = putWrite(s, putParams(m, "fay", "like", 0))(ctx) })
	wg2.Go(func() { good = putWrite(s, putParams(m, "gus", "like", 1))(ctx) })
	wg2.Wait()
	if messageapi.ErrorCode(bad.err) != messageapi.EINTERNAL || good.err != nil || !good.put.Created {
		t.Errorf("bad write: %v; good write: %+v, %v", bad.err, good.put, good.err)
	}
}

// TestGroupCommitFailedBatchCommitsNothing: a batch whose later write
// fails the transaction commits none of the writes before it, which are
// then written alone, and each is told what it did.
func TestGroupCommitFailedBatchCommitsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	s, reg, run := groupStore(t, f, postgres.GroupCommitConfig{MaxBatch: 64, Committers: 1})
	// Key order puts amy's write first in the batch, zed's (a score the
	// table refuses) after it.
	var good, bad outcome
	var wg sync.WaitGroup
	wg.Go(func() { good = putWrite(s, putParams(m, "amy", "like", 1))(ctx) })
	for s.Queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	wg.Go(func() { bad = putWrite(s, putParams(m, "zed", "like", 0))(ctx) })
	for s.Queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	run()
	wg.Wait()
	if messageapi.ErrorCode(bad.err) != messageapi.EINTERNAL {
		t.Errorf("bad write: %v, want an internal error", bad.err)
	}
	if good.err != nil || !good.put.Created || good.put.Version != 1 {
		t.Errorf("good write: %+v, %v; want it created once, by its write alone", good.put, good.err)
	}
	if n := counterValue(t, reg, "messageapi_write_batches_total", "split"); n != 1 {
		t.Errorf("%v split batches, want 1", n)
	}
}

func putWrite(s *postgres.GroupCommitStore, p messageapi.PutReactionParams) func(context.Context) outcome {
	return func(ctx context.Context) outcome {
		r, err := s.PutReaction(ctx, p)
		return outcome{put: r, err: err}
	}
}

func delWrite(s *postgres.GroupCommitStore, message, user, typ string) func(context.Context) outcome {
	return func(ctx context.Context) outcome {
		r, err := s.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: message, UserID: user, Type: typ, At: time.Now()})
		return outcome{del: r, err: err}
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestGroupCommitRaceOfOneKey: many writers post the same reaction at
// once, across batches and committers: exactly one is told it created it,
// and its version counts every write.
func TestGroupCommitRaceOfOneKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	s, reg, run := groupStore(t, f, postgres.GroupCommitConfig{MaxBatch: 8, Committers: 4})
	run()
	const writers = 200
	var mu sync.Mutex
	created, versions := 0, map[int64]bool{}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			r, err := s.PutReaction(ctx, putParams(m, "bob", "like", i+1))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Created {
				created++
			}
			versions[r.Version] = true
		})
	}
	wg.Wait()
	if created != 1 || len(versions) != writers {
		t.Errorf("%d writers were told they created it (want 1); %d distinct versions (want %d)", created, len(versions), writers)
	}
	var version int64
	if err := f.db.Pool().QueryRow(ctx, `select version from reactions where message_id = $1`, m).Scan(&version); err != nil || version != writers {
		t.Errorf("stored version %d, %v; want %d", version, err, writers)
	}
	t.Logf("%d writes in %d transactions", writers, histogramCount(t, reg, "messageapi_write_batch_size"))
}

// TestGroupCommitHotMessageBurst: a burst of distinct reactions on one
// message all commit, each as new, in fewer transactions than writes.
func TestGroupCommitHotMessageBurst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	s, reg, run := groupStore(t, f, postgres.GroupCommitConfig{})
	run()
	const writers = 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range writers {
		wg.Go(func() {
			r, err := s.PutReaction(ctx, putParams(m, fmt.Sprintf("u%d", i), []string{"like", "love", "clap"}[i%3], 2))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Created {
				created++
			}
		})
	}
	wg.Wait()
	var rows, sum int
	if err := f.db.Pool().QueryRow(ctx, `select count(*), sum(score) from reactions where message_id = $1 and deleted_at is null`, m).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	batches := histogramCount(t, reg, "messageapi_write_batch_size")
	if created != writers || rows != writers || sum != 2*writers {
		t.Errorf("%d created, %d rows, score sum %d; want %d, %d, %d", created, rows, sum, writers, writers, 2*writers)
	}
	t.Logf("%d writes in %d transactions", writers, batches)
}

// counterValue returns the value of the counter name whose only label has
// the value label.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
