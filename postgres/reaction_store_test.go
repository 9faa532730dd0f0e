package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"messageapi"
)

func TestPutReactionReportsCreatedAndUnknownMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	first, err := f.reactions.PutReaction(ctx, putParams(m, "u", "like", 1))
	if err != nil || !first.Created || first.Version != 1 {
		t.Fatalf("first put = %+v, %v; want version 1, created", first, err)
	}
	second, err := f.reactions.PutReaction(ctx, putParams(m, "u", "like", 9))
	if err != nil || second.Created || second.Version != 2 || second.Reaction.ID != first.Reaction.ID ||
		second.Reaction.Score != 9 || second.Reaction.CreatedAt != first.Reaction.CreatedAt {
		t.Fatalf("second put = %+v, %v; want the same reaction re-scored", second, err)
	}
	if _, err := f.reactions.PutReaction(ctx, putParams(uuid.Must(uuid.NewV7()).String(), "u", "like", 1)); messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Fatalf("put on unknown message = %v, want not found", err)
	}
}

func TestListReactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
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

// TestPutReactionCreatedUnderRaces: whether a reaction is new to the
// client is decided under the row lock, not from a snapshot.
func TestPutReactionCreatedUnderRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	put := func(user string) <-chan bool {
		created := make(chan bool, 1)
		go func() {
			res, err := f.reactions.PutReaction(ctx, putParams(m, user, "like", 1))
			if err != nil {
				t.Error(err)
			}
			created <- res.Created
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
