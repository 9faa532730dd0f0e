// Command seed fills an empty database with a chat of any size, directly
// in PostgreSQL: messages over channels of skewed sizes, reactions with
// hot messages, and the read model as the projection would have left it,
// every reaction already folded.
//
//	go run ./loadtest/seed -database-url postgres://... -messages 1000000 -channels 1000 -reactions 10000000
//
// It migrates the schema first (as `api migrate` does), then, in one
// transaction: N messages with UUIDv7 ids rising with their created_at
// (the time inside the id, as the service makes them), spread over C
// channels whose sizes fall like (rank+q)^-a (the largest, "default",
// about 10 % of the messages, the median, with 100 channels, half the
// mean); R reactions, 1 % on one hot message, 9 % on 99 other hot ones,
// 60 % on the newest 10 % of the messages and 30 % on any, of six types,
// mostly of score 1, one per (message, user, type); and the view of every
// message, computed from its reactions (views.go), with every reaction
// marked as projected. `worker reconcile` then finds nothing to rebuild.
// Last it vacuums and analyses the tables (a server may run without
// autovacuum, and a table never analysed gets poor plans).
//
// The same -seed gives the same data (its times are relative to when it
// runs).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"messageapi"
	"messageapi/postgres"
)

func main() {
	var s shape
	url := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL of an empty database (or schema: search_path=...); default $DATABASE_URL")
	flag.IntVar(&s.Messages, "messages", 100_000, "messages")
	flag.IntVar(&s.Channels, "channels", 100, "channels")
	flag.IntVar(&s.Reactions, "reactions", 1_000_000, "reactions")
	flag.IntVar(&s.Users, "users", 0, "users (default: 300,000 for a million messages, in proportion below that, at least 100)")
	flag.Int64Var(&s.Seed, "seed", 1, "seed of every random choice")
	flag.DurationVar(&s.Span, "span", 30*24*time.Hour, "time the messages cover, up to now")
	vacuum := flag.Bool("vacuum", true, "vacuum and analyse the tables afterwards")
	downTo := flag.Int("down-to", 0, "instead of seeding, migrate a seeded database down to this schema version and compact its tables, to run an earlier build on the same data")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "seed: -database-url is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *downTo > 0 {
		if err := migrateDown(ctx, *url, int32(*downTo), os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(1)
		}
		return
	}
	if _, err := seed(ctx, *url, s, *vacuum, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// result is what a seed made.
type result struct {
	messages, reactions, views int64
	hotID                      string // the hottest message
}

// seed migrates the database of url and seeds s into it, logging each
// step and its time to logw.
func seed(ctx context.Context, url string, s shape, vacuum bool, logw io.Writer) (result, error) {
	begin := time.Now()
	step := func(format string, args ...any) func(string, ...any) {
		fmt.Fprintf(logw, "seed: "+format+"\n", args...)
		start := time.Now()
		return func(format string, args ...any) {
			fmt.Fprintf(logw, "seed:   "+format+" in %.1fs\n", append(args, time.Since(start).Seconds())...)
		}
	}
	p, err := newPlan(s, time.Now())
	if err != nil {
		return result{}, err
	}
	fmt.Fprintln(logw, "seed:", p.summary())

	db, err := postgres.Open(postgres.Config{URL: url, MaxConns: 1, QueryTimeout: time.Hour, Name: "messageapi-seed"})
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	done := step("migrating the schema")
	if err := db.Migrate(ctx); err != nil {
		return result{}, err
	}
	done("migrated")
	pc, err := db.Pool().Acquire(ctx)
	if err != nil {
		return result{}, fmt.Errorf("connect: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	// Bulk statements: no statement bound, memory for the sorts, and no
	// wait for the disk at each commit.
	if _, err := conn.Exec(ctx, `set statement_timeout = 0; set lock_timeout = 0;
		set work_mem = '256MB'; set maintenance_work_mem = '512MB'; set synchronous_commit = off`); err != nil {
		return result{}, fmt.Errorf("settings: %w", err)
	}
	var used bool
	if err := conn.QueryRow(ctx, `select exists (select from messages) or exists (select from reactions)`).Scan(&used); err != nil {
		return result{}, fmt.Errorf("check empty: %w", err)
	}
	if used {
		return result{}, errors.New("the database already holds messages or reactions: seed an empty one")
	}

	var res result
	tx, err := conn.Begin(ctx)
	if err != nil {
		return result{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	done = step("inserting %d messages", p.Messages)
	if res.messages, err = p.insertMessages(ctx, tx.Conn()); err != nil {
		return result{}, err
	}
	done("%d messages", res.messages)
	done = step("inserting %d reactions (their indexes dropped, then built again)", p.Reactions)
	if err := p.loadCounts(ctx, tx.Conn()); err != nil {
		return result{}, err
	}
	// Seeded reactions are folded already: no change of theirs is
	// recorded for the projection (the trigger of migration 011 is off
	// until they are in, in this transaction only).
	if _, err := tx.Exec(ctx, `alter table reactions disable trigger reactions_record_change`); err != nil {
		return result{}, fmt.Errorf("seed reactions as folded: %w", err)
	}
	indexes, err := withoutIndexes(ctx, tx.Conn(), "reactions", func() error {
		res.reactions, err = p.insertReactions(ctx, tx.Conn())
		if err == nil {
			done("%d reactions", res.reactions)
			done = step("building the indexes of reactions")
		}
		return err
	})
	if err != nil {
		return result{}, err
	}
	if _, err := tx.Exec(ctx, `alter table reactions enable trigger reactions_record_change`); err != nil {
		return result{}, fmt.Errorf("seed reactions as folded: %w", err)
	}
	done("%s", strings.Join(indexes, ", "))
	done = step("building the views from the reactions")
	if res.views, err = buildViews(ctx, tx.Conn(), messageapi.InlineReactions); err != nil {
		return result{}, err
	}
	done("%d views", res.views)
	done = step("committing")
	if err := tx.Commit(ctx); err != nil {
		return result{}, fmt.Errorf("commit: %w", err)
	}
	done("committed")
	if vacuum {
		for _, table := range []string{"messages", "reactions", "message_views"} {
			done = step("vacuum (analyze) %s", table)
			if _, err := conn.Exec(ctx, "vacuum (analyze) "+table); err != nil {
				return result{}, fmt.Errorf("vacuum %s: %w", table, err)
			}
			done("vacuumed")
		}
	}
	if len(p.hot) > 0 {
		var channel string
		var count int64
		err := conn.QueryRow(ctx, `
			select m.id::text, m.channel_id, v.reaction_count
			from messages m join message_views v on v.message_id = m.id
			where m.id = `+p.messageIDSQL("$1::integer")+``, p.hot[0]).Scan(&res.hotID, &channel, &count)
		if err != nil {
			return result{}, fmt.Errorf("read the hot message: %w", err)
		}
		fmt.Fprintf(logw, "seed: the hottest message is %s in channel %s, with %d reactions\n", res.hotID, channel, count)
	}
	fmt.Fprintf(logw, "seed: done in %.1fs\n", time.Since(begin).Seconds())
	return res, nil
}

// migrateDown migrates the database of url down to version, then rewrites
// the tables that the down migrations updated in place (vacuum full), so
// that an earlier build is measured on tables as compact as a seed leaves
// them, not on tables half of dead rows.
func migrateDown(ctx context.Context, url string, version int32, logw io.Writer) error {
	db, err := postgres.Open(postgres.Config{URL: url, MaxConns: 1, QueryTimeout: time.Hour, Name: "messageapi-seed"})
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := db.MigrateTo(ctx, version); err != nil {
		return fmt.Errorf("migrate down to %d: %w", version, err)
	}
	fmt.Fprintf(logw, "seed: migrated down to version %d in %.1fs\n", version, time.Since(start).Seconds())
	start = time.Now()
	pc, err := db.Pool().Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pc.Release()
	for _, sql := range []string{`set statement_timeout = 0`, `set maintenance_work_mem = '1GB'`,
		`vacuum (full, analyze) reactions`, `vacuum (full, analyze) message_views`} {
		if _, err := pc.Exec(ctx, sql); err != nil {
			return fmt.Errorf("compact: %s: %w", sql, err)
		}
	}
	fmt.Fprintf(logw, "seed: compacted reactions and message_views in %.1fs\n", time.Since(start).Seconds())
	return nil
}
