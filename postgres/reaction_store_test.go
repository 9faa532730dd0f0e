package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// TestPutReactionCapsTypes: a message takes at most MaxTypes live types; a
// post of one more stores nothing, and a type frees up when its last
// reaction goes.
func TestPutReactionCapsTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	put := func(user, typ string) error {
		p := putParams(m, user, typ, 1)
		p.MaxTypes = 3
		_, err := f.reactions.PutReaction(ctx, p)
		return err
	}
	for _, typ := range []string{"a", "b", "c"} {
		if err := put("u1", typ); err != nil {
			t.Fatal(err)
		}
	}
	err := put("u2", "d")
	if messageapi.ErrorCode(err) != messageapi.ELIMIT || messageapi.ErrorFields(err)["type"] == "" {
		t.Fatalf("a fourth type = %v, want limit_exceeded naming type", err)
	}
	if err := put("u2", "a"); err != nil { // an existing type is fine
		t.Fatalf("another user's reaction of an existing type: %v", err)
	}
	var rows int
	if err := f.db.Pool().QueryRow(ctx, `select count(*) from reactions where message_id = $1 and type = 'd'`, m).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the refused type stored %d rows (%v)", rows, err)
	}
	if _, err := f.reactions.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: m, UserID: "u1", Type: "c", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := put("u2", "d"); err != nil {
		t.Fatalf("a new type after one was freed: %v", err)
	}
}

// TestPutReactionCapHoldsUnderRaces: many new types posted at once to a
// message with room for one get exactly one in.
func TestPutReactionCapHoldsUnderRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	p := putParams(m, "u0", "base", 1)
	p.MaxTypes = 2
	if _, err := f.reactions.PutReaction(ctx, p); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 8)
	for i := range 8 {
		go func() {
			p := putParams(m, fmt.Sprintf("u%d", i+1), fmt.Sprintf("new%d", i), 1)
			p.MaxTypes = 2
			_, err := f.reactions.PutReaction(ctx, p)
			results <- err
		}()
	}
	accepted := 0
	for range 8 {
		switch err := <-results; messageapi.ErrorCode(err) {
		case "":
			accepted++
		case messageapi.ELIMIT:
		default:
			t.Fatal(err)
		}
	}
	var types int
	if err := f.db.Pool().QueryRow(ctx, `select count(distinct type) from reactions where message_id = $1 and deleted_at is null`, m).Scan(&types); err != nil {
		t.Fatal(err)
	}
	if accepted != 1 || types != 2 {
		t.Errorf("%d new types accepted, %d types stored; want 1 and 2", accepted, types)
	}
}

// TestPutReactionUnique: a unique post removes the user's other types and
// returns them; two unique posts of one user at once leave one type.
func TestPutReactionUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	m := f.message(t)
	like := f.put(t, m, "alice", "like", 1)
	love := f.put(t, m, "alice", "love", 1)
	f.put(t, m, "bob", "like", 1) // another user's: untouched
	p := putParams(m, "alice", "wow", 1)
	p.Unique = true
	res, err := f.reactions.PutReaction(ctx, p)
	if err != nil || !res.Created {
		t.Fatalf("unique post = %+v, %v", res, err)
	}
	removed := map[string]bool{}
	for _, r := range res.Removed {
		removed[r.ID] = r.Version == 2
	}
	if len(removed) != 2 || !removed[like] || !removed[love] {
		t.Errorf("removed = %+v, want alice's like and love at version 2", res.Removed)
	}
	live := func(user string) []string {
		rs, err := f.reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: m, UserID: user, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, r := range rs {
			types = append(types, r.Type)
		}
		return types
	}
	if got := fmt.Sprint(live("alice"), live("bob")); got != "[wow] [like]" {
		t.Errorf("live reactions of alice and bob = %s, want [wow] [like]", got)
	}

	// Two unique posts at once: one type is left, whichever came last.
	done := make(chan error, 2)
	for _, typ := range []string{"up", "down"} {
		go func() {
			p := putParams(m, "carol", typ, 1)
			p.Unique = true
			_, err := f.reactions.PutReaction(ctx, p)
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := live("carol"); len(got) != 1 {
		t.Errorf("carol holds %v after two unique posts at once, want one type", got)
	}
}
