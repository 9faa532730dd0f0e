package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"messageapi"
)

func TestReconcileRepairsDriftAndPendingChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	healthy, drifted, pending := f.message(t), f.message(t), f.message(t)
	f.project(t, f.put(t, healthy, "a", "like", 2))
	f.project(t, f.put(t, drifted, "a", "like", 2))
	f.put(t, pending, "a", "wow", 5) // committed, never folded
	if _, err := f.db.Pool().Exec(ctx, `update message_views set reaction_count = 99, reaction_groups = jsonb_set(reaction_groups, '{like,0}', '99') where message_id = $1`, drifted); err != nil {
		t.Fatal(err)
	}

	res, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 3 || len(res.Rebuilt) != 2 || fmt.Sprint(res.Drifted) != fmt.Sprint([]string{drifted}) {
		t.Fatalf("reconcile: checked %d, rebuilt %d, drifted %v; want 3, 2, [%s]", res.Checked, len(res.Rebuilt), res.Drifted, drifted)
	}
	wantCounts(t, f.view(t, healthy), map[string]int64{"like": 1}, map[string]int64{"like": 2})
	wantCounts(t, f.view(t, drifted), map[string]int64{"like": 1}, map[string]int64{"like": 2})
	wantCounts(t, f.view(t, pending), map[string]int64{"wow": 1}, map[string]int64{"wow": 5})
	if lag, _ := f.projector.Lag(ctx); lag != 0 {
		t.Errorf("lag = %v after reconcile; want every change folded", lag)
	}
	// Nothing left to do the second time.
	if res, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 100}); err != nil || len(res.Rebuilt) != 0 {
		t.Errorf("second reconcile rebuilt %d views (%v), want 0", len(res.Rebuilt), err)
	}
}

// TestReconcileKeepsChangesFoldedWhileItWaits: a rebuild reads a message's
// reactions, then waits; meanwhile a new reaction is written and folded.
// The rebuilt view must still count it.
func TestReconcileKeepsChangesFoldedWhileItWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	first := f.put(t, m, "u1", "like", 1)
	f.project(t, first)
	f.put(t, m, "u1", "like", 2) // pending, so reconcile picks the message

	// Another transaction holds the first reaction, so the rebuild takes
	// its snapshot of the message's reactions and waits on that lock.
	holder, err := f.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	var holderPID int
	if err := holder.QueryRow(ctx, `select pg_backend_pid() from reactions where id = $1 for update`, first).Scan(&holderPID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 100})
		done <- err
	}()
	waitBlockedBy(t, f, holderPID)
	f.project(t, f.put(t, m, "u2", "like", 5)) // written and folded meanwhile
	// Written, folded, then changed again meanwhile: counted at 4, its
	// re-score to 6 pending.
	rescored := f.put(t, m, "u3", "like", 4)
	f.project(t, rescored)
	f.put(t, m, "u3", "like", 6)
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.project(t, rescored)
	if res, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 100}); err != nil || res.Folded != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing left", res.Folded, err)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 3}, map[string]int64{"like": 13})
}
