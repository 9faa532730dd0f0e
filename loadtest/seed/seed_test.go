package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
	"messageapi/projection"
)

type noCache struct{}

func (noCache) RefreshViews(context.Context, []messageapi.MessageView) (int, error) { return 0, nil }

// testWriter logs the seed's progress lines in the test's output.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// Seeds a small chat and checks it as the service would: reconcile finds
// every view equal to its reactions, a view rebuilt by the projection's
// own code is the view seeded, and the data has the shape asked for.
func TestSeedIsWhatTheProjectionWouldHaveWritten(t *testing.T) {
	const messages, channels, reactions = 2000, 20, 20_000
	url := postgrestest.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := seed(ctx, url, shape{Messages: messages, Channels: channels, Reactions: reactions, Seed: 7}, true, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if res.messages != messages || res.reactions != reactions || res.views != messages {
		t.Fatalf("seeded %d messages, %d reactions, %d views; want %d, %d, %d",
			res.messages, res.reactions, res.views, messages, reactions, messages)
	}
	db := postgrestest.Open(t, url, postgres.Config{})
	pool := db.Pool()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("reconcile finds no drift", func(t *testing.T) {
		report, err := projection.Reconcile(ctx, postgres.NewProjector(db), noCache{}, log, 500)
		if err != nil {
			t.Fatal(err)
		}
		if report.Checked != messages || report.Rebuilt != 0 || len(report.Drifted) != 0 {
			t.Fatalf("reconcile: %+v, want %d checked, none rebuilt", report, messages)
		}
	})

	t.Run("a view rebuilt by the projection is the seeded one", func(t *testing.T) {
		// Knock the count of the busiest views off, so that reconcile
		// rebuilds them with the projection's code, and compare every
		// column it writes with what the seed wrote.
		exec(t, pool, `create table seeded as select * from message_views`)
		exec(t, pool, `
			update message_views set reaction_count = reaction_count + 1
			where message_id in (
				(select message_id from message_views order by reaction_count desc limit 40)
				union all
				(select message_id from message_views where reaction_count between 1 and 3 limit 10))`)
		report, err := projection.Reconcile(ctx, postgres.NewProjector(db), noCache{}, log, 500)
		if err != nil {
			t.Fatal(err)
		}
		if report.Rebuilt != 50 || len(report.Drifted) != 50 {
			t.Fatalf("reconcile: %d rebuilt, %d drifted; want the 50 views changed", report.Rebuilt, len(report.Drifted))
		}
		var same, total int
		scalar(t, pool, `
			select count(*) filter (where v.reaction_count = s.reaction_count and v.reaction_groups = s.reaction_groups
					and v.latest_reactions = s.latest_reactions and v.version = s.version + 1),
				count(*)
			from message_views v join seeded s using (message_id)
			where v.message_id = any($1::uuid[])`, []any{&same, &total}, report.Drifted)
		if same != 50 || total != 50 {
			var diff string
			scalar(t, pool, `
				select format(E'seeded  %s %s\nrebuilt %s %s', s.reaction_groups, s.latest_reactions, v.reaction_groups, v.latest_reactions)
				from message_views v join seeded s using (message_id)
				where v.message_id = any($1::uuid[]) and (v.reaction_groups <> s.reaction_groups or v.latest_reactions <> s.latest_reactions)
				limit 1`, []any{&diff}, report.Drifted)
			t.Fatalf("%d of %d rebuilt views equal the seeded ones; first that differs:\n%s", same, total, diff)
		}
	})

	t.Run("shape", func(t *testing.T) {
		var hot, top100, recent, ones int64
		scalar(t, pool, `
			with per as (select message_id, count(*) as n from reactions group by message_id),
			ranked as (select n, row_number() over (order by n desc) as k from per)
			select (select max(n) from per), (select sum(n) from ranked where k <= 100),
				(select count(*) from reactions where message_id >= (
					select id from messages order by id desc offset $1 limit 1)),
				(select count(*) from reactions where score = 1)`,
			[]any{&hot, &top100, &recent, &ones}, messages/10-1)
		if hot < reactions/100 || hot > reactions*125/10000 {
			t.Errorf("the hottest message has %d reactions, want about 1 %% of %d", hot, reactions)
		}
		if top100 < reactions/10 {
			t.Errorf("the 100 hottest messages have %d reactions, want at least 10 %% of %d", top100, reactions)
		}
		if recent < reactions*6/10 {
			t.Errorf("the newest 10 %% of the messages have %d reactions, want at least 60 %% of %d", recent, reactions)
		}
		if ones < reactions*8/10 || ones > reactions*9/10 {
			t.Errorf("%d reactions of score 1, want most but not all of %d", ones, reactions)
		}

		rows, _ := pool.Query(ctx, `select count(*) from messages group by channel_id order by 1 desc`)
		sizes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		mean := int64(messages / channels)
		if len(sizes) != channels || sizes[0] < 3*mean/2 || sizes[0] < 2*sizes[len(sizes)/2] {
			t.Errorf("channel sizes %v: want %d channels, the largest well above the mean (%d) and twice the median", sizes, channels, mean)
		}
		var largest string
		scalar(t, pool, `select channel_id from messages group by 1 order by count(*) desc limit 1`, []any{&largest})
		if largest != messageapi.DefaultChannel {
			t.Errorf("the largest channel is %s, want %s", largest, messageapi.DefaultChannel)
		}

		var types int
		scalar(t, pool, `select count(distinct type) from reactions`, []any{&types})
		if types != len(reactionTypes) {
			t.Errorf("%d reaction types, want %d", types, len(reactionTypes))
		}
	})

	t.Run("ids, times and keys as the service keeps them", func(t *testing.T) {
		// Each count is of rows that break a rule; all must be 0.
		checks := map[string]string{
			"message whose created_at is not the time in its id": `
				select count(*) from messages
				where ('x' || translate(left(id::text, 13), '-', ''))::bit(48)::bigint <> (extract(epoch from created_at) * 1000)::bigint
					or substr(id::text, 15, 1) <> '7' or substr(id::text, 20, 1) not in ('8', '9', 'a', 'b')`,
			"reaction whose created_at is not the time in its id": `
				select count(*) from reactions
				where ('x' || translate(left(id::text, 13), '-', ''))::bit(48)::bigint <> (extract(epoch from created_at) * 1000)::bigint
					or substr(id::text, 15, 1) <> '7'`,
			"message whose id and time disagree on the order of its channel": `
				select count(*) from (
					select created_at < lag(created_at) over (partition by channel_id order by id) as back from messages) m
				where back`,
			"reaction not after its message, or in the future": `
				select count(*) from reactions r join messages m on m.id = r.message_id
				where r.created_at <= m.created_at or r.created_at > now() or r.updated_at <> r.created_at`,
			"reaction of no message": `
				select count(*) from reactions r where not exists (select from messages m where m.id = r.message_id)`,
			"reaction with a change pending, or deleted": `
				select (select count(*) from reaction_changes) + (select count(*) from reactions where deleted_at is not null)`,
			"trigger off after the seed": `
				select count(*) from pg_trigger where tgname = 'reactions_record_change' and tgenabled = 'D'`,
			"message without a view": `
				select count(*) from messages m where not exists (select from message_views v where v.message_id = m.id)`,
			"repeated (message, user, type)": `
				select count(*) - count(distinct (message_id, user_id, type)) from reactions`,
		}
		for name, sql := range checks {
			var n int64
			scalar(t, pool, sql, []any{&n})
			if n != 0 {
				t.Errorf("%d: %s", n, name)
			}
		}
	})

	t.Run("the indexes of reactions are those of the migrations", func(t *testing.T) {
		fresh := postgrestest.NewSchema(t)
		postgrestest.Open(t, fresh, postgres.Config{})
		want := indexDefs(t, fresh)
		got := indexDefs(t, url)
		if !slices.Equal(got, want) {
			t.Errorf("indexes of reactions after the seed:\n%s\nwant, as migrated:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// indexDefs lists the definitions of the indexes and constraints of
// reactions in the schema of url, without the schema's name.
func indexDefs(t *testing.T, url string) []string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `
		select replace(pg_get_indexdef(indexrelid), current_schema() || '.', '') from pg_index where indrelid = 'reactions'::regclass
		union all
		select conname || ' ' || pg_get_constraintdef(oid) from pg_constraint where conrelid = 'reactions'::regclass
		order by 1`)
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// scalar scans the one row of sql into dest.
func scalar(t *testing.T, pool *pgxpool.Pool, sql string, dest []any, args ...any) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
