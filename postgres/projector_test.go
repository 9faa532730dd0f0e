package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

type projectorFixture struct {
	db        *postgres.DB
	messages  *postgres.MessageStore
	reactions *postgres.ReactionStore
	projector *postgres.Projector
}

func newProjectorFixture(t *testing.T) *projectorFixture {
	t.Helper()
	db := postgrestest.NewDB(t)
	return &projectorFixture{
		db:        db,
		messages:  postgres.NewMessageStore(db),
		reactions: postgres.NewReactionStore(db),
		projector: postgres.NewProjector(db),
	}
}

func (f *projectorFixture) message(t *testing.T) string {
	t.Helper()
	m := newMessage(t, "m")
	if _, err := f.messages.CreateMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// put stores a reaction and returns its id.
func (f *projectorFixture) put(t *testing.T, messageID, user, typ string, score int) string {
	t.Helper()
	now := messageapi.NewTime(time.Now())
	r, _, _, err := f.reactions.PutReaction(context.Background(), messageapi.Reaction{
		ID: uuid.Must(uuid.NewV7()).String(), MessageID: messageID, UserID: user, Type: typ, Score: score,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func (f *projectorFixture) project(t *testing.T, ids ...string) []messageapi.MessageView {
	t.Helper()
	views, err := f.projector.Project(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return views
}

func (f *projectorFixture) view(t *testing.T, id string) messageapi.MessageView {
	t.Helper()
	v, err := f.messages.GetMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCounts checks a view's totals: counts and scores per type.
func wantCounts(t *testing.T, v messageapi.MessageView, counts, scores map[string]int64) {
	t.Helper()
	var total int64
	for _, c := range counts {
		total += c
	}
	if v.ReactionCount != total || !maps.Equal(v.ReactionCounts, counts) || !maps.Equal(v.ReactionScores, scores) {
		t.Fatalf("view = count %d %v scores %v; want count %d %v scores %v",
			v.ReactionCount, v.ReactionCounts, v.ReactionScores, total, counts, scores)
	}
}

func TestProjectIsIdempotentAndOrderFree(t *testing.T) {
	t.Parallel()
	f := newProjectorFixture(t)
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
	f := newProjectorFixture(t)
	m := f.message(t)
	a := f.put(t, m, "alice", "love", 2)
	f.put(t, m, "bob", "like", 1)
	f.project(t, a)
	wantCounts(t, f.view(t, m), map[string]int64{"love": 1}, map[string]int64{"love": 2})

	if _, _, err := f.reactions.DeleteReaction(ctx, m, "alice", "love", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.reactions.DeleteReaction(ctx, m, "alice", "love", time.Now())
	if messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Fatalf("second delete = %v, want not found", err)
	}
	f.project(t, a)
	v := f.view(t, m)
	wantCounts(t, v, map[string]int64{}, map[string]int64{})
	if len(v.Reactions) != 1 || v.Reactions[0].UserID != "bob" {
		t.Errorf("latest reactions = %+v, want bob's only (live rows, projected or not)", v.Reactions)
	}
	var rows int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) from reactions where id = $1`, a).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("folded tombstone still stored (%d rows, %v)", rows, err)
	}

	// Reacting again creates a new reaction.
	r, _, created, err := f.reactions.PutReaction(ctx, messageapi.Reaction{
		ID: uuid.Must(uuid.NewV7()).String(), MessageID: m, UserID: "alice", Type: "love", Score: 4,
		CreatedAt: messageapi.NewTime(time.Now()), UpdatedAt: messageapi.NewTime(time.Now()),
	})
	if err != nil || !created {
		t.Fatalf("revive = %v, created %v", err, created)
	}
	f.project(t, r.ID)
	wantCounts(t, f.view(t, m), map[string]int64{"love": 1}, map[string]int64{"love": 4})
}

func TestPutReactionReportsCreatedAndUnknownMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
	m := f.message(t)
	now := messageapi.NewTime(time.Now())
	r := messageapi.Reaction{ID: uuid.Must(uuid.NewV7()).String(), MessageID: m, UserID: "u", Type: "like", Score: 1, CreatedAt: now, UpdatedAt: now}
	first, v1, created, err := f.reactions.PutReaction(ctx, r)
	if err != nil || !created || v1 != 1 {
		t.Fatalf("first put = v%d created %v err %v", v1, created, err)
	}
	r.ID, r.Score = uuid.Must(uuid.NewV7()).String(), 9
	second, v2, created, err := f.reactions.PutReaction(ctx, r)
	if err != nil || created || v2 != 2 || second.ID != first.ID || second.Score != 9 || second.CreatedAt != first.CreatedAt {
		t.Fatalf("second put = %+v v%d created %v err %v; want the same reaction re-scored", second, v2, created, err)
	}
	r.MessageID = uuid.Must(uuid.NewV7()).String()
	if _, _, _, err := f.reactions.PutReaction(ctx, r); messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Fatalf("put on unknown message = %v, want not found", err)
	}
}

func TestSweepFoldsWhatNoEntryBrought(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
	m := f.message(t)
	for i := range 25 {
		f.put(t, m, fmt.Sprintf("u%d", i), "like", i+1)
	}
	if lag, err := f.projector.Lag(ctx); err != nil || lag <= 0 {
		t.Fatalf("lag = %v, %v; want positive while changes wait", lag, err)
	}
	// Too young: the stream may still deliver them.
	if n, _, err := f.projector.Sweep(ctx, time.Hour, 100); err != nil || n != 0 {
		t.Fatalf("Sweep(young) = %d, %v; want 0", n, err)
	}
	total := 0
	for {
		n, _, err := f.projector.Sweep(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 25 {
		t.Errorf("swept %d changes, want 25", total)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 25}, map[string]int64{"like": 325})
	if lag, err := f.projector.Lag(ctx); err != nil || lag != 0 {
		t.Errorf("lag = %v, %v after the sweep; want 0", lag, err)
	}
}

func TestReconcileRepairsDriftAndPendingChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
	healthy, drifted, pending := f.message(t), f.message(t), f.message(t)
	f.project(t, f.put(t, healthy, "a", "like", 2))
	f.project(t, f.put(t, drifted, "a", "like", 2))
	f.put(t, pending, "a", "wow", 5) // committed, never folded
	if _, err := f.db.Pool().Exec(ctx, `update message_views set reaction_count = 99, reaction_counts = '{"like": 99}' where message_id = $1`, drifted); err != nil {
		t.Fatal(err)
	}

	checked, _, rebuilt, driftedIDs, err := f.projector.ReconcilePage(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if checked != 3 || len(rebuilt) != 2 || fmt.Sprint(driftedIDs) != fmt.Sprint([]string{drifted}) {
		t.Fatalf("reconcile: checked %d, rebuilt %d, drifted %v; want 3, 2, [%s]", checked, len(rebuilt), driftedIDs, drifted)
	}
	wantCounts(t, f.view(t, healthy), map[string]int64{"like": 1}, map[string]int64{"like": 2})
	wantCounts(t, f.view(t, drifted), map[string]int64{"like": 1}, map[string]int64{"like": 2})
	wantCounts(t, f.view(t, pending), map[string]int64{"wow": 1}, map[string]int64{"wow": 5})
	if lag, _ := f.projector.Lag(ctx); lag != 0 {
		t.Errorf("lag = %v after reconcile; want every change folded", lag)
	}
	// Nothing left to do the second time.
	if _, _, rebuilt, _, err := f.projector.ReconcilePage(ctx, "", 100); err != nil || len(rebuilt) != 0 {
		t.Errorf("second reconcile rebuilt %d views (%v), want 0", len(rebuilt), err)
	}
}

func TestListReactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
	m := f.message(t)
	for i := range 6 {
		typ := "like"
		if i%2 == 1 {
			typ = "love"
		}
		f.put(t, m, fmt.Sprintf("u%d", i), typ, 1) // ties on created_at fall back to the time-ordered id
	}
	users := func(rs []messageapi.Reaction) string {
		s := ""
		for _, r := range rs {
			s += r.UserID + " "
		}
		return s
	}
	list := func(r messageapi.ReactionRange) []messageapi.Reaction {
		t.Helper()
		r.MessageID = m
		rs, err := f.reactions.ListReactions(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	all := list(messageapi.ReactionRange{Limit: 10})
	if got := users(all); got != "u5 u4 u3 u2 u1 u0 " {
		t.Errorf("all = %s", got)
	}
	if got := users(list(messageapi.ReactionRange{Limit: 10, Type: "love"})); got != "u5 u3 u1 " {
		t.Errorf("type=love = %s", got)
	}
	if got := users(list(messageapi.ReactionRange{Limit: 10, UserID: "u2"})); got != "u2 " {
		t.Errorf("user_id=u2 = %s", got)
	}
	after := all[2]
	if got := users(list(messageapi.ReactionRange{Limit: 2, BeforeCreatedAt: after.CreatedAt.Time, BeforeID: after.ID})); got != "u2 u1 " {
		t.Errorf("after u3 = %s", got)
	}
	if _, err := f.reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: uuid.Must(uuid.NewV7()).String(), Limit: 10}); messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Errorf("unknown message = %v, want not found", err)
	}
}

// TestReconcileKeepsChangesFoldedWhileItWaits: a rebuild reads a message's
// reactions, then waits; meanwhile a new reaction is written and folded.
// The rebuilt view must still count it.
func TestReconcileKeepsChangesFoldedWhileItWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
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
		_, _, _, _, err := f.projector.ReconcilePage(ctx, "", 100)
		done <- err
	}()
	waitBlockedBy(t, f, holderPID)
	f.project(t, f.put(t, m, "u2", "like", 5)) // written and folded meanwhile
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, _, err := f.projector.Sweep(ctx, 0, 100); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing left", n, err)
	}
	wantCounts(t, f.view(t, m), map[string]int64{"like": 2}, map[string]int64{"like": 7})
}

// waitBlockedBy returns once some session waits on a lock that the session
// with pid holds.
func waitBlockedBy(t *testing.T, f *projectorFixture, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for blocked := false; !blocked; {
		if err := f.db.Pool().QueryRow(context.Background(),
			`select exists (select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid)))`, pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing waited on the held lock")
		}
	}
}

// TestPutReactionCreatedUnderRaces: whether a reaction is new to the
// client is decided under the row lock, not from a snapshot.
func TestPutReactionCreatedUnderRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newProjectorFixture(t)
	m := f.message(t)
	put := func(user string) <-chan bool {
		created := make(chan bool, 1)
		go func() {
			now := messageapi.NewTime(time.Now())
			_, _, c, err := f.reactions.PutReaction(ctx, messageapi.Reaction{ID: uuid.Must(uuid.NewV7()).String(),
				MessageID: m, UserID: user, Type: "like", Score: 1, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
		return created
	}
	hold := func(sql string, args ...any) (pgx.Tx, int) {
		tx, err := f.db.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := tx.QueryRow(ctx, `select pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return tx, pid
	}

	// Two first posts at once: the one that waits re-scores, it does not
	// create.
	tx, pid := hold(`insert into reactions (id, message_id, user_id, type, score, created_at, updated_at)
		values ($1, $2, 'u1', 'like', 1, now(), now())`, uuid.Must(uuid.NewV7()).String(), m)
	second := put("u1")
	waitBlockedBy(t, f, pid)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if <-second {
		t.Error("the second of two simultaneous first posts reported a new reaction")
	}

	// A post that waits on a delete revives the reaction: new to the client.
	<-put("u2")
	tx, pid = hold(`update reactions set deleted_at = now(), version = version + 1 where message_id = $1 and user_id = 'u2'`, m)
	revive := put("u2")
	waitBlockedBy(t, f, pid)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !<-revive {
		t.Error("a post that revived a just-deleted reaction reported an update")
	}
}
