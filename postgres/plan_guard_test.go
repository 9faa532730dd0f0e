package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

// TestReadPlansStayBoundedOnAHotMessage is the guard against plan
// regressions on hot data: one message holds tens of thousands of
// reactions, and every query the read side runs (pages, a single message,
// own reactions, the reaction list with and without its filters) must read
// a bounded number of rows for its answer, with the statistics the
// planner had before the message grew (stale) and after ANALYZE (fresh).
// A query whose planner picks a scan of the hot message's whole list
// fails it.
func TestReadPlansStayBoundedOnAHotMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := &postgrestest.QueryLog{}
	url := postgrestest.NewSchema(t)
	db := postgrestest.Open(t, url, postgres.Config{Tracer: log})
	messages, reactions, projector := postgres.NewMessageStore(db), postgres.NewReactionStore(db), postgres.NewProjector(db)
	pool := db.Pool()
	// Statistics change only when the test says so.
	if _, err := pool.Exec(ctx, `alter table reactions set (autovacuum_enabled = off);
		alter table messages set (autovacuum_enabled = off);
		alter table message_views set (autovacuum_enabled = off)`); err != nil {
		t.Fatal(err)
	}

	// 2,000 messages; the newest 60 have a few reactions each.
	var ids []string
	var created []time.Time
	for range 2000 {
		m := newMessage(t, "m")
		ids, created = append(ids, m.ID), append(created, m.CreatedAt.Time)
	}
	if _, err := pool.Exec(ctx, `
		with m as (
			insert into messages (id, text, user_id, created_at)
			select id, 'm', 'u', at from unnest($1::uuid[], $2::timestamptz[]) as u(id, at)
			returning id
		)
		insert into message_views (message_id) select id from m`, ids, created); err != nil {
		t.Fatal(err)
	}
	ids = ids[len(ids)-60:]
	cold, page := ids[30], ids[50:]
	for i, id := range ids {
		for _, u := range []string{"alice", "bob"} {
			if _, err := reactions.PutReaction(ctx, putParams(id, u, []string{"like", "love"}[i%2], 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// grow makes a message of the page hot: 30,000 reactions of three
	// common types from as many users, what a load test's posts leave, and
	// a rare type.
	grow := func(hot string) {
		// The bulk insert is set-up, not a query under test: it may take
		// longer than the pool's statement timeout on a busy machine.
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `set local statement_timeout = 0`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `
			insert into reactions (id, message_id, user_id, type, score, created_at, updated_at)
			select gen_random_uuid(), $1, 'fan-' || i, (array['like', 'love', 'clap'])[1 + i % 3], 1 + i % 50,
				now() - make_interval(secs => i), now() - make_interval(secs => i)
			from generate_series(1, 30000) i`, hot)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"wow", "like", "love"} {
			if _, err := reactions.PutReaction(ctx, putParams(hot, "carol", typ, 3)); err != nil {
				t.Fatal(err)
			}
		}
	}
	analyze := func() {
		if _, err := pool.Exec(ctx, "analyze reactions; analyze messages; analyze message_views"); err != nil {
			t.Fatal(err)
		}
	}

	// Each read, and the most rows its queries may read: its answer, the
	// rows a page number skips, and a little slack for the probes of keys;
	// a list of all types merges the newest of each of the hot message's
	// four, (types + 1) * (limit + 1) at most.
	type read struct {
		name    string
		maxRows float64
		run     func() error
	}
	reads := func(hot string) []read {
		latest, err := reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: hot, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		deep := latest[99]
		own := func(user string) func() error {
			return func() error { _, err := reactions.OwnReactions(ctx, page, user); return err }
		}
		list := func(r messageapi.ReactionRange) func() error {
			return func() error { r.MessageID, r.Limit = hot, 11; _, err := reactions.ListReactions(ctx, r); return err }
		}
		pages := func(r messageapi.MessageRange) func() error {
			return func() error { _, err := messages.ListMessages(ctx, r); return err }
		}
		folds := 0
		fold := func() error { // the fold of one new reaction: its queries only
			folds++
			res, err := reactions.PutReaction(ctx, putParams(hot, fmt.Sprintf("folded-%d", folds), "clap", 1))
			if err != nil {
				return err
			}
			log.Take()
			_, err = projector.Project(ctx, []string{res.Reaction.ID})
			return err
		}
		return []read{
			{"page 1", 50, pages(messageapi.MessageRange{Limit: 11})},
			{"page 4 by number", 100, pages(messageapi.MessageRange{Offset: 30, Limit: 11})},
			{"the page after a cursor", 50, pages(messageapi.MessageRange{BeforeID: ids[40], Limit: 11})},
			{"the page before a cursor (toward the present)", 50, pages(messageapi.MessageRange{AfterID: ids[20], Limit: 11})},
			{"the page around a message", 50, pages(messageapi.MessageRange{AtOrBeforeID: hot, Limit: 11})},
			{"a single message", 10, func() error { _, err := messages.GetMessage(ctx, hot); return err }},
			{"own reactions of a reader of the hot message", 100, own("carol")},
			{"own reactions of a reader who never reacted", 100, own("dave")},
			{"own reactions of a fan of the hot message", 100, own("fan-17")},
			{"the reaction list", 100, list(messageapi.ReactionRange{})},
			{"the reaction list after a cursor", 100, list(messageapi.ReactionRange{BeforeCreatedAt: deep.CreatedAt.Time, BeforeID: deep.ID})},
			{"the reaction list of a rare type", 50, list(messageapi.ReactionRange{Type: "wow"})},
			{"the reaction list of a common type", 50, list(messageapi.ReactionRange{Type: "clap"})},
			{"the reaction list of one user", 50, list(messageapi.ReactionRange{UserID: "carol"})},
			{"the reaction list of a user who never reacted", 50, list(messageapi.ReactionRange{UserID: "dave"})},
			{"the reaction list of one user and type", 50, list(messageapi.ReactionRange{UserID: "carol", Type: "love"})},
			// Its latest reactions (as the reaction list), and one row at
			// each end of the changed type's group, not the whole group.
			{"the fold of a reaction to the hot message", 100, fold},
			{"the reaction list of a message with few", 50, func() error {
				_, err := reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: cold, Limit: 11, UserID: "dave"})
				return err
			}},
		}
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	check := func(stats string, reads []read) {
		for _, r := range reads {
			log.Take()
			if err := r.run(); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			queries := log.Take()
			if len(queries) == 0 {
				t.Fatalf("%s ran no query", r.name)
			}
			for _, q := range queries {
				if w := strings.ToLower(strings.TrimSpace(q.SQL)); w == "begin" || w == "commit" {
					continue // the fold's transaction
				}
				rows, scans := postgrestest.RowsRead(t, conn, q)
				if rows > r.maxRows {
					t.Errorf("%s statistics: %s read %.0f rows, more than %.0f:\n  %s\n%s", stats, r.name, rows, r.maxRows,
						strings.Join(scans, "\n  "), strings.Join(strings.Fields(q.SQL), " "))
				}
			}
		}
	}
	// No statistics yet, as on a new database a load test fills: the
	// planner knows only the tables' sizes.
	grow(page[9])
	check("no", reads(page[9]))
	// Statistics taken before a message grew hot.
	analyze()
	grow(page[8])
	check("stale", reads(page[8]))
	analyze()
	check("fresh", reads(page[8]))
}
