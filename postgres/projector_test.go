package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

func TestProjectIsIdempotentAndOrderFree(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	m := f.message(t)
	a := f.put(t, m, "alice", "like", 1)
	b := f.put(t, m, "bob", "like", 3)

	f.project(t, a, b)
	f.project(t, a, b) // a duplicate delivery
	v := f.view(t, m)
	wantCounts(t, v, map[string]int64{"like": 2}, map[string]int64{"like": 4})
	if v.Version != 1 {
		t.Errorf("version = %d after one effective fold, want 1", v.Version)
	}

	// alice re-scores, then bob's old id arrives again before hers.
	f.put(t, m, "alice", "like", 10)
	f.project(t, b)
	wantCounts(t, f.view(t, m), map[string]int64{"like": 2}, map[string]int64{"like": 4})
	f.project(t, a)
	wantCounts(t, f.view(t, m), map[string]int64{"like": 2}, map[string]int64{"like": 13})
}

func TestProjectDeleteAndRevive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	a := f.put(t, m, "alice", "love", 2)
	b := f.put(t, m, "bob", "like", 1)
	f.project(t, a)
	wantCounts(t, f.view(t, m), map[string]int64{"love": 1}, map[string]int64{"love": 2})

	del := messageapi.DeleteReactionParams{MessageID: m, UserID: "alice", Type: "love", At: time.Now()}
	if _, err := f.reactions.DeleteReaction(ctx, del); err != nil {
		t.Fatal(err)
	}
	_, err := f.reactions.DeleteReaction(ctx, del)
	if messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Fatalf("second delete = %v, want not found", err)
	}
	f.project(t, a)
	v := f.view(t, m)
	wantCounts(t, v, map[string]int64{}, map[string]int64{})
	// The latest reactions are those the counts count: bob's, not folded
	// yet, joins them with its fold.
	if len(v.Reactions) != 0 {
		t.Errorf("latest reactions = %+v, want none before bob's fold", v.Reactions)
	}
	f.project(t, b)
	if v := f.view(t, m); len(v.Reactions) != 1 || v.Reactions[0].UserID != "bob" {
		t.Errorf("latest reactions = %+v, want bob's only", v.Reactions)
	}
	var rows int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) from reactions where id = $1`, a).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("folded tombstone still stored (%d rows, %v)", rows, err)
	}

	// Reacting again creates a new reaction.
	res, err := f.reactions.PutReaction(ctx, putParams(m, "alice", "love", 4))
	if err != nil || !res.Created {
		t.Fatalf("revive = %v, created %v", err, res.Created)
	}
	f.project(t, res.Reaction.ID)
	wantCounts(t, f.view(t, m), map[string]int64{"like": 1, "love": 1}, map[string]int64{"like": 1, "love": 4})
}

func TestSweepFoldsWhatNoEntryBrought(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	for i := range 25 {
		f.put(t, m, fmt.Sprintf("u%d", i), "like", i+1)
	}
	if lag, err := f.projector.Lag(ctx); err != nil || lag <= 0 {
		t.Fatalf("lag = %v, %v; want positive while changes wait", lag, err)
	}
	// Too young: the stream may still deliver them.
	if res, err := f.projector.Sweep(ctx, messageapi.SweepParams{MinAge: time.Hour, Limit: 100}); err != nil || res.Folded != 0 {
		t.Fatalf("Sweep(young) = %d, %v; want 0", res.Folded, err)
	}
	total := 0
	for {
		res, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Folded == 0 {
			break
		}
		total += res.Folded
	}
	if total != 25 {
		t.Errorf("swept %d changes, want 25", total)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 25}, map[string]int64{"like": 325})
	if lag, err := f.projector.Lag(ctx); err != nil || lag != 0 {
		t.Errorf("lag = %v, %v after the sweep; want 0", lag, err)
	}
}

// TestProjectSkipsWhatAnotherTransactionHolds: a fold never waits for a
// lock. Rows another transaction holds, and rows whose view it holds, are
// reported skipped and folded once they are free.
func TestProjectSkipsWhatAnotherTransactionHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m1, m2 := f.message(t), f.message(t)
	held := f.put(t, m1, "a", "like", 1)
	free := f.put(t, m1, "b", "like", 2)
	viewHeld := f.put(t, m2, "c", "love", 3)

	tx, err := f.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `select 1 from reactions where id = $1 for update`, held); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select 1 from message_views where message_id = $1 for update`, m2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := f.projector.Project(ctx, []string{held, free, viewHeld})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the fold took %v; it must not wait for locks", took)
	}
	slices.Sort(res.Skipped)
	want := []string{held, viewHeld}
	slices.Sort(want)
	if res.Folded != 1 || !slices.Equal(res.Skipped, want) {
		t.Fatalf("folded %d, skipped %v; want 1 folded and %v skipped", res.Folded, res.Skipped, want)
	}
	wantCounts(t, f.view(t, m1), map[string]int64{"like": 1}, map[string]int64{"like": 2})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	f.project(t, held, viewHeld)
	wantCounts(t, f.view(t, m1), map[string]int64{"like": 2}, map[string]int64{"like": 3})
	wantCounts(t, f.view(t, m2), map[string]int64{"love": 1}, map[string]int64{"love": 3})
}

// TestSessionsAreBoundedOnTheServer: a transaction left idle by a stuck
// client is ended by PostgreSQL, releasing its locks.
func TestSessionsAreBoundedOnTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := postgrestest.Open(t, postgrestest.NewSchema(t), postgres.Config{IdleInTxTimeout: 200 * time.Millisecond, LockTimeout: time.Second, Name: "bounded-test"})
	var lockTimeout, idle, name string
	if err := db.Pool().QueryRow(ctx, `select current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')`).Scan(&lockTimeout, &idle, &name); err != nil {
		t.Fatal(err)
	}
	if lockTimeout != "1s" || idle != "200ms" || name != "bounded-test" {
		t.Errorf("session settings: lock_timeout %s, idle_in_transaction_session_timeout %s, application_name %s", lockTimeout, idle, name)
	}
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select 1`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := tx.Exec(ctx, `select 1`)
		if err != nil {
			break // the server ended the idle transaction
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle transaction outlived idle_in_transaction_session_timeout")
		}
		time.Sleep(300 * time.Millisecond) // idle longer than the bound
	}
}

// TestReactionGroups: a group's count and sum fold like the counts; its
// first and latest times move when the first or the latest reaction of the
// type goes or comes back, and the group goes with its last reaction.
func TestReactionGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	at := func(minute int) time.Time { return time.Date(2026, 11, 27, 10, minute, 0, 123e6, time.UTC) }
	put := func(user string, minute, score int) string {
		p := putParams(m, user, "like", score)
		p.At = at(minute)
		res, err := f.reactions.PutReaction(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return res.Reaction.ID
	}
	del := func(user string) string {
		res, err := f.reactions.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: m, UserID: user, Type: "like", At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return res.ReactionID
	}
	group := func() messageapi.ReactionGroup { return f.view(t, m).ReactionGroups["like"] }
	wantGroup := func(step string, count, sum int64, first, last int) {
		t.Helper()
		g := group()
		if g.Count != count || g.SumScores != sum || !g.FirstReactionAt.Equal(at(first)) || !g.LastReactionAt.Equal(at(last)) {
			t.Errorf("%s: group %+v, want count %d sum %d first %v last %v", step, g, count, sum, at(first), at(last))
		}
	}
	f.project(t, put("a", 1, 1), put("b", 2, 2), put("c", 3, 3))
	wantGroup("three reactions", 3, 6, 1, 3)
	f.project(t, del("a"))
	wantGroup("the first deleted", 2, 5, 2, 3)
	f.project(t, del("c"))
	wantGroup("the latest deleted", 1, 2, 2, 2)
	f.project(t, put("a", 4, 5))
	wantGroup("the first revived, now the latest", 2, 7, 2, 4)
	if res, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 10}); err != nil || len(res.Rebuilt) != 0 {
		t.Fatalf("reconcile rebuilt %d views (%v); the groups must equal the aggregate over the reactions", len(res.Rebuilt), err)
	}
	f.project(t, del("a"), del("b"))
	if v := f.view(t, m); len(v.ReactionGroups) != 0 || v.ReactionCount != 0 {
		t.Errorf("groups %+v after the last reaction went, want none", v.ReactionGroups)
	}

	// Wrong times are found and repaired by reconcile, as a rebuild, not
	// as drift of the counts.
	f.project(t, put("d", 5, 1))
	if _, err := f.db.Pool().Exec(ctx, `update message_views set reaction_groups = jsonb_set(reaction_groups, '{like,2}', '946684800000') where message_id = $1`, m); err != nil {
		t.Fatal(err)
	}
	res, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 10})
	if err != nil || len(res.Rebuilt) != 1 || len(res.Drifted) != 0 {
		t.Fatalf("reconcile = %+v, %v; want one view rebuilt, none drifted", res, err)
	}
	wantGroup("after reconcile", 1, 1, 5, 5)
}

// TestChangesAreSettledByTheirFold: every write of a reaction records its
// change in reaction_changes, in its own transaction, and the fold that
// counts it removes the record in its. A record left behind by a process
// that did not settle it (its reaction already projected, or gone with its
// message) is settled by the sweeper, so the lag returns to 0.
func TestChangesAreSettledByTheirFold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	changes := func() int {
		t.Helper()
		var n int
		if err := f.db.Pool().QueryRow(ctx, `select count(*) from reaction_changes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	m := f.message(t)
	a := f.put(t, m, "alice", "like", 1)
	b := f.put(t, m, "bob", "like", 2)
	if _, err := f.reactions.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: m, UserID: "bob", Type: "like", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n := changes(); n != 2 {
		t.Fatalf("%d changes recorded after two reactions and a delete of one, want 2 (one a reaction)", n)
	}
	f.project(t, a)
	if n := changes(); n != 1 {
		t.Fatalf("%d changes recorded after folding one of two, want 1", n)
	}
	f.project(t, b)
	if n := changes(); n != 0 {
		t.Fatalf("%d changes recorded after folding both, want 0", n)
	}

	// Left behind by hand: a record of a reaction that no longer exists.
	c := f.put(t, m, "carol", "like", 3)
	f.project(t, c)
	if _, err := f.db.Pool().Exec(ctx, `insert into reaction_changes (reaction_id, changed_at, base_score)
		values (gen_random_uuid(), now() - interval '1 minute', 1)`); err != nil {
		t.Fatal(err)
	}
	if lag, err := f.projector.Lag(ctx); err != nil || lag < 50*time.Second {
		t.Fatalf("lag = %v, %v; want about a minute while the record waits", lag, err)
	}
	if _, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if n := changes(); n != 0 {
		t.Fatalf("%d records left after the sweep, want 0", n)
	}
	if lag, err := f.projector.Lag(ctx); err != nil || lag != 0 {
		t.Errorf("lag = %v, %v after the sweep; want 0", lag, err)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 2}, map[string]int64{"like": 4})

	// A write of a reaction whose change is pending keeps the first base: a
	// re-score of a counted reaction before its fold, then another.
	f.put(t, m, "alice", "like", 5)
	f.put(t, m, "alice", "like", 7)
	var base int
	if err := f.db.Pool().QueryRow(ctx, `select base_score from reaction_changes where reaction_id = $1`, a).Scan(&base); err != nil || base != 1 {
		t.Fatalf("base score = %d, %v after two re-scores of a reaction counted at 1, want 1", base, err)
	}
	f.project(t, a)
	wantCounts(t, f.view(t, m), map[string]int64{"like": 2}, map[string]int64{"like": 10})

	// A message delete takes its reactions' records with them.
	f.put(t, m, "dave", "love", 1)
	if _, err := f.messages.DeleteMessage(ctx, messageapi.MessageChange{ID: m, UserID: "u", AnyAuthor: true, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n := changes(); n != 0 {
		t.Errorf("%d records left after the message's delete, want 0", n)
	}
}

// TestFoldWritesNoReactionRow: a fold counts a change and settles its
// record without writing the reaction's row, so the indexes of reactions
// take no entry for it: every row keeps its place (ctid) through folds,
// and only the purge of a counted tombstone removes one.
func TestFoldWritesNoReactionRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	var ids []string
	for i := range 40 {
		ids = append(ids, f.put(t, m, fmt.Sprintf("u%d", i), "like", 1))
	}
	places := func() map[string]string {
		t.Helper()
		rows, err := f.db.Pool().Query(ctx, `select id::text, ctid::text from reactions where message_id = $1`, m)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		var id, ctid string
		if _, err := pgx.ForEachRow(rows, []any{&id, &ctid}, func() error { out[id] = ctid; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := places()
	f.project(t, ids...)
	f.project(t, ids...) // a duplicate delivery
	if _, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 100}); err != nil {
		t.Fatal(err)
	}
	if after := places(); !maps.Equal(before, after) {
		t.Errorf("rows moved by folds: before %v, after %v", before, after)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 40}, map[string]int64{"like": 40})
}

// TestFoldsKeepLatestAndTimesAsARebuildWould: folds move each view's
// latest reactions and group times by the changes they count, reading
// reactions only where they must. After random writes (new reactions,
// re-scores, deletes, revives), folded in random batches and orders with
// duplicates, every view holds what a rebuild computes from the rows:
// the same newest reactions, and groups that reconcile finds right.
func TestFoldsKeepLatestAndTimesAsARebuildWould(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	rng := rand.New(rand.NewPCG(7, 11))
	messages := []string{f.message(t), f.message(t), f.message(t)}
	types := []string{"like", "love", "wow"}
	var pending []string
	for step := range 600 {
		m := messages[rng.IntN(len(messages))]
		user, typ := fmt.Sprintf("u%d", rng.IntN(8)), types[rng.IntN(len(types))]
		if rng.IntN(4) == 0 {
			res, err := f.reactions.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: m, UserID: user, Type: typ, At: time.Now()})
			if err == nil {
				pending = append(pending, res.ReactionID)
			}
		} else {
			pending = append(pending, f.put(t, m, user, typ, 1+rng.IntN(5)))
		}
		if step%7 == 6 { // a batch of some pending changes, and some again
			rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
			n := rng.IntN(len(pending) + 1)
			f.project(t, pending[:n]...)
			pending = pending[n:]
		}
	}
	f.project(t, pending...)
	if _, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, m := range messages {
		v := f.view(t, m)
		want, err := f.reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: m, Limit: messageapi.InlineReactions})
		if err != nil {
			t.Fatal(err)
		}
		if got, w := reactionStates(v.Reactions), reactionStates(want); got != w {
			t.Errorf("message %s: latest %s, want %s", m, got, w)
		}
	}
	res, err := f.projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 10})
	if err != nil || len(res.Rebuilt) != 0 {
		t.Errorf("reconcile rebuilt %v (%v); want every view as the rows say", res.Rebuilt, err)
	}
}

func reactionStates(rs []messageapi.Reaction) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.ID + "@" + r.CreatedAt.String() + fmt.Sprint(r.Score)
	}
	return fmt.Sprint(s)
}
