package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

// TestPagePlansStayBoundedOnASeededChat is the plan guard of the page
// cache's miss path at scale: on a chat of 100,000 messages in 100
// channels of skewed sizes, the queries a page read of a channel that is
// not cached runs (page 1, which also fills the cache), the extension of
// a cached page 1 by the next page, and a deep page by number each read a
// bounded number of rows, whatever the channel's size: an index range
// and a probe a message, not a scan of the channel.
func TestPagePlansStayBoundedOnASeededChat(t *testing.T) {
	t.Parallel()
	const messages, channels, reactions = 100_000, 100, 300_000
	url := postgrestest.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := seed(ctx, url, shape{Messages: messages, Channels: channels, Reactions: reactions, Seed: 3}, true, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	log := &postgrestest.QueryLog{}
	db := postgrestest.Open(t, url, postgres.Config{Tracer: log})
	store := postgres.NewMessageStore(db)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// The largest channel, a median one and the smallest.
	var sized []string
	rows, err := conn.Query(ctx, `
		with c as (select channel_id, count(*) as n from messages group by channel_id)
		(select channel_id from c order by n desc limit 1)
		union all (select channel_id from c order by n desc offset 50 limit 1)
		union all (select channel_id from c order by n limit 1)`)
	if err == nil {
		sized, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(sized) != 3 {
		t.Fatalf("channels: %v, %v", sized, err)
	}
	for _, channel := range sized {
		page1, err := store.ListMessages(ctx, messageapi.MessageRange{ChannelID: channel, Limit: 11})
		if err != nil || len(page1) == 0 {
			t.Fatalf("channel %s page 1: %d messages, %v", channel, len(page1), err)
		}
		oldest := page1[len(page1)-1].ID
		// Each read, and the most rows its queries may read: the messages
		// of the answer and their views, those a page number skips, and a
		// little slack.
		for _, r := range []struct {
			name    string
			maxRows float64
			rng     messageapi.MessageRange
		}{
			{"page 1 of an uncached channel (and its fill)", 50, messageapi.MessageRange{ChannelID: channel, Limit: 11}},
			{"the extension of a cached page 1 by page 2", 50, messageapi.MessageRange{ChannelID: channel, BeforeID: oldest, Limit: 10}},
			{"page 50 by number", 1100, messageapi.MessageRange{ChannelID: channel, Offset: 490, Limit: 11}},
		} {
			log.Take()
			if _, err := store.ListMessages(ctx, r.rng); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			queries := log.Take()
			if len(queries) == 0 {
				t.Fatalf("%s ran no query", r.name)
			}
			for _, q := range queries {
				rows, scans := postgrestest.RowsRead(t, conn, q)
				if rows > r.maxRows {
					t.Errorf("channel %s: %s read %.0f rows, more than %.0f:\n  %s\n%s", channel, r.name, rows, r.maxRows,
						strings.Join(scans, "\n  "), strings.Join(strings.Fields(q.SQL), " "))
				}
			}
		}
	}
}
