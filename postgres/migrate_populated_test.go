package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/postgres"
)

// populatedBase is the schema version TestMigratingAPopulatedDatabase
// fills before it migrates to the latest: the last before edits, deletes
// and channels.
const populatedBase = 5

// oldFoldSQL is what a worker of the base version left behind for the
// messages $1 once it had folded every change: views equal to the
// aggregate over the live reactions, and every row marked projected.
const oldFoldSQL = `
	with a as (
		select message_id, sum(c)::bigint as count, jsonb_object_agg(type, c) as counts, jsonb_object_agg(type, s) as scores,
			jsonb_object_agg(type, jsonb_build_object('count', c, 'sum_scores', s,
				'first_reaction_at', to_char(f at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
				'last_reaction_at', to_char(l at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) as groups
		from (
			select message_id, type, count(*) as c, sum(score) as s, min(created_at) as f, max(created_at) as l
			from reactions where message_id = any($1::uuid[]) and deleted_at is null
			group by message_id, type
		) t
		group by message_id
	), v as (
		update message_views v set reaction_count = a.count, reaction_counts = a.counts, reaction_scores = a.scores,
			reaction_groups = a.groups, version = v.version + 1
		from a where v.message_id = a.message_id
	)
	update reactions set projected_version = version, projected_score = case when deleted_at is null then score else 0 end
	where message_id = any($1::uuid[])`

// TestMigratingAPopulatedDatabase: a database of the base version, holding
// reactions folded by its worker and changes not yet folded, migrates to
// the latest version without losing or double-counting any. The current
// projector then folds what was pending, reconcile finds no drift, and
// the current code writes, folds and deletes on the migrated rows.
func TestMigratingAPopulatedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migratedTo(t, populatedBase)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	messages := make([]string, 12)
	for i := range messages {
		messages[i] = uuid.Must(uuid.NewV7()).String()
		exec(`insert into messages (id, text, user_id, created_at) values ($1, $2, 'u', now())`, messages[i], fmt.Sprintf("m%d", i))
		exec(`insert into message_views (message_id) values ($1)`, messages[i])
	}
	// The base version's writes: put_reaction with the rules of 003, and
	// the delete's update.
	put := func() {
		t.Helper()
		var status string
		err := db.Pool().QueryRow(ctx, `select status from put_reaction($1, $2, $3, $4, $5, now(), 25, false)`,
			uuid.Must(uuid.NewV7()).String(), messages[rng.IntN(len(messages))], fmt.Sprintf("u%d", rng.IntN(10)),
			[]string{"like", "love", "wow", "clap"}[rng.IntN(4)], 1+rng.IntN(9)).Scan(&status)
		if err != nil || (status != "created" && status != "updated") {
			t.Fatalf("put_reaction = %q, %v", status, err)
		}
	}
	unreact := func(n int) {
		t.Helper()
		exec(`update reactions set deleted_at = now(), updated_at = now(), version = version + 1
			where id in (select id from reactions where deleted_at is null order by id limit $1)`, n)
	}
	for range 240 {
		put()
	}
	unreact(40)
	exec(oldFoldSQL, messages[:6])
	// Changes after that fold, which it never saw: new reactions, new
	// scores of counted ones, deletes.
	for range 60 {
		put()
	}
	unreact(20)

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	projector := postgres.NewProjector(db)
	sweepAll := func() {
		t.Helper()
		for {
			res, err := projector.Sweep(ctx, messageapi.SweepParams{MinAge: 0, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Folded == 0 && len(res.Skipped) == 0 {
				return
			}
		}
	}
	noDrift := func(when string) {
		t.Helper()
		res, err := projector.ReconcilePage(ctx, messageapi.ReconcileParams{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if res.Checked != len(messages) || len(res.Rebuilt) != 0 || len(res.Drifted) != 0 {
			t.Fatalf("%s: reconcile checked %d views, rebuilt %d, drifted %v; want %d checked and nothing to repair",
				when, res.Checked, len(res.Rebuilt), res.Drifted, len(messages))
		}
		var live, counted int64
		if err := db.Pool().QueryRow(ctx, `select (select count(*) from reactions where deleted_at is null),
			(select sum(reaction_count)::bigint from message_views)`).Scan(&live, &counted); err != nil {
			t.Fatal(err)
		}
		if live != counted {
			t.Fatalf("%s: the views count %d reactions; %d are live", when, counted, live)
		}
	}
	sweepAll()
	noDrift("after the migration and a sweep")

	// The current code on the migrated rows: reactions, a delete of a
	// message that holds reactions of the base version, its folds.
	reactions, store := postgres.NewReactionStore(db), postgres.NewMessageStore(db)
	for i := range 20 {
		if _, err := reactions.PutReaction(ctx, messageapi.PutReactionParams{ID: uuid.Must(uuid.NewV7()).String(),
			MessageID: messages[i%len(messages)], UserID: fmt.Sprintf("u%d", i%10), Type: "like", Score: 3, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.DeleteMessage(ctx, messageapi.MessageChange{ID: messages[0], UserID: "u", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	sweepAll()
	noDrift("after new writes and a delete")
}
