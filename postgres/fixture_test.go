package postgres_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

// storeFixture is the stores and the projector on a migrated schema of
// their own.
type storeFixture struct {
	db        *postgres.DB
	messages  *postgres.MessageStore
	reactions *postgres.ReactionStore
	projector *postgres.Projector
}

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	db := postgrestest.NewDB(t)
	return &storeFixture{
		db:        db,
		messages:  postgres.NewMessageStore(db),
		reactions: postgres.NewReactionStore(db),
		projector: postgres.NewProjector(db),
	}
}

func (f *storeFixture) message(t *testing.T) string {
	t.Helper()
	m := newMessage(t, "m")
	if _, err := f.messages.CreateMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// put stores a reaction and returns its id.
func (f *storeFixture) put(t *testing.T, messageID, user, typ string, score int) string {
	t.Helper()
	res, err := f.reactions.PutReaction(context.Background(), putParams(messageID, user, typ, score))
	if err != nil {
		t.Fatal(err)
	}
	return res.Reaction.ID
}

// putParams asks for the reaction of (messageID, user, typ) with score, now.
func putParams(messageID, user, typ string, score int) messageapi.PutReactionParams {
	return messageapi.PutReactionParams{
		ID: uuid.Must(uuid.NewV7()).String(), MessageID: messageID, UserID: user, Type: typ, Score: score,
		At: messageapi.NewTime(time.Now()).Time,
	}
}

func (f *storeFixture) project(t *testing.T, ids ...string) []messageapi.MessageView {
	t.Helper()
	res, err := f.projector.Project(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) > 0 {
		t.Fatalf("fold skipped %v; nothing else holds them", res.Skipped)
	}
	return res.Views
}

func (f *storeFixture) view(t *testing.T, id string) messageapi.MessageView {
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

// waitBlockedBy returns once some session waits on a lock that the session
// with pid holds.
func waitBlockedBy(t *testing.T, f *storeFixture, pid int) {
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
