package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"messageapi"
	"messageapi/postgres"
)

func change(id, user, text string) messageapi.MessageChange {
	return messageapi.MessageChange{ID: id, UserID: user, Text: text, At: messageapi.NewTime(time.Now()).Time}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if messageapi.ErrorCode(err) != code {
		t.Fatalf("%s: err = %v; want %s", what, err, code)
	}
}

func TestEditMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	id := f.message(t)
	f.project(t, f.put(t, id, "bob", "like", 3))
	before := f.view(t, id)

	wantCode(t, "edit by another user", errOf(f.messages.EditMessage(ctx, change(id, "bob", "mine now"))), messageapi.EPERMISSION)
	wantCode(t, "edit of an unknown message", errOf(f.messages.EditMessage(ctx, change(newMessage(t, "x").ID, "alice", "x"))), messageapi.ENOTFOUND)
	if f.view(t, id).Text != "m" {
		t.Fatal("a refused edit changed the text")
	}

	v, err := f.messages.EditMessage(ctx, change(id, "alice", "edited"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Text != "edited" || v.UpdatedAt == nil || v.CreatedAt != before.CreatedAt || v.Version != before.Version+1 {
		t.Fatalf("edited view = text %q updated %v created %v version %d; want the new text, updated_at, the same created_at, version %d",
			v.Text, v.UpdatedAt, v.CreatedAt, v.Version, before.Version+1)
	}
	wantCounts(t, v, map[string]int64{"like": 1}, map[string]int64{"like": 3})
	if got := f.view(t, id); got.Text != "edited" || got.Version != v.Version {
		t.Fatalf("stored view = %q v%d; want the edit's", got.Text, got.Version)
	}

	// A server's token edits any message.
	any := change(id, "moderator", "moderated")
	any.AnyAuthor = true
	if v, err := f.messages.EditMessage(ctx, any); err != nil || v.Text != "moderated" || v.UserID != "alice" {
		t.Fatalf("edit with AnyAuthor = %q by %q, %v; want the text changed and the author kept", v.Text, v.UserID, err)
	}
}

func TestDeleteMessageLeavesATombstone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	older, id, newer := f.message(t), f.message(t), f.message(t)
	folded := f.put(t, id, "bob", "like", 3)
	f.project(t, folded)
	pending := f.put(t, id, "carol", "love", 2) // committed, not folded yet
	before := f.view(t, id)

	wantCode(t, "delete by another user", errOf(f.messages.DeleteMessage(ctx, change(id, "bob", ""))), messageapi.EPERMISSION)
	v, err := f.messages.DeleteMessage(ctx, change(id, "alice", ""))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Deleted() || v.Text != "" || v.ReactionCount != 0 || len(v.ReactionGroups) != 0 || len(v.Reactions) != 0 || v.Version != before.Version+1 {
		t.Fatalf("tombstone = %+v; want deleted, no text, no reactions, version %d", v, before.Version+1)
	}
	// Deleting again changes nothing.
	again, err := f.messages.DeleteMessage(ctx, change(id, "alice", ""))
	if err != nil || again.Version != v.Version || !again.Deleted() {
		t.Fatalf("second delete = v%d deleted %v, %v; want the same tombstone", again.Version, again.Deleted(), err)
	}

	// Its place in the pages stays.
	page, err := f.messages.ListMessages(ctx, messageapi.MessageRange{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].ID != newer || page[1].ID != id || page[2].ID != older || !page[1].Deleted() {
		t.Fatalf("page = %v; want newer, the tombstone, older", ids(page))
	}
	// New reactions are refused; edits too; the list is empty.
	if _, err := f.reactions.PutReaction(ctx, putParams(id, "dave", "like", 1)); messageapi.ErrorCode(err) != messageapi.ENOTFOUND {
		t.Fatalf("reaction to a deleted message: %v; want not found", err)
	}
	wantCode(t, "edit of a deleted message", errOf(f.messages.EditMessage(ctx, change(id, "alice", "back"))), messageapi.ENOTFOUND)
	list, err := f.reactions.ListReactions(ctx, messageapi.ReactionRange{MessageID: id, Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("reactions of a deleted message = %v, %v; want none", list, err)
	}
	// The stream entries still to come find nothing to count.
	f.project(t, folded, pending)
	if res, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 100}); err != nil || res.Folded != 0 {
		t.Fatalf("sweep after the delete folded %d (%v); want 0", res.Folded, err)
	}
	wantCounts(t, f.view(t, id), map[string]int64{}, map[string]int64{})
	wantNoDrift(t, f)
}

// TestDeleteRacingReactions posts reactions to a message while it is
// deleted, through the group-commit store the API uses. Whatever order
// they land in, every reaction is refused or removed, and after the folds
// the view counts nothing: reconcile finds no drift.
func TestDeleteRacingReactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	store, _, run := groupStore(t, f, postgres.GroupCommitConfig{MaxBatch: 16, Committers: 2})
	run()
	for round := 0; round < 5; round++ {
		id := f.message(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var written []string
		start := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Go(func() {
				<-start
				for i := 0; i < 10; i++ {
					p := putParams(id, "u"+string(rune('a'+w)), []string{"like", "love", "wow"}[i%3], i+1)
					res, err := store.PutReaction(ctx, p)
					switch messageapi.ErrorCode(err) {
					case "":
						mu.Lock()
						written = append(written, res.Reaction.ID)
						mu.Unlock()
					case messageapi.ENOTFOUND:
					default:
						t.Errorf("reaction during a delete: %v", err)
					}
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(round) * time.Millisecond)
		if _, err := f.messages.DeleteMessage(ctx, change(id, "alice", "")); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		f.project(t, written...)
		if _, err := f.projector.Sweep(ctx, messageapi.SweepParams{Limit: 1000}); err != nil {
			t.Fatal(err)
		}
		v := f.view(t, id)
		if !v.Deleted() || v.ReactionCount != 0 || len(v.Reactions) != 0 {
			t.Fatalf("round %d: view after the race = count %d, %d reactions; want a tombstone with none", round, v.ReactionCount, len(v.Reactions))
		}
		var left int
		if err := f.db.Pool().QueryRow(ctx, `select count(*) from reactions where message_id = $1`, id).Scan(&left); err != nil || left != 0 {
			t.Fatalf("round %d: %d reaction rows of the deleted message (%v); want 0", round, left, err)
		}
	}
	wantNoDrift(t, f)
}

// wantNoDrift runs reconcile over every message and fails on any drift.
func wantNoDrift(t *testing.T, f *storeFixture) {
	t.Helper()
	res, err := f.projector.ReconcilePage(context.Background(), messageapi.ReconcileParams{Limit: 1000})
	if err != nil || len(res.Drifted) != 0 {
		t.Fatalf("reconcile: drifted %v, %v; want none", res.Drifted, err)
	}
}

func errOf(_ messageapi.MessageView, err error) error { return err }

func ids(views []messageapi.MessageView) []string {
	out := make([]string, len(views))
	for i, v := range views {
		out[i] = v.ID
	}
	return out
}

// TestListMessagesByChannel: every form of page reads one channel only.
func TestListMessagesByChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	var general, other []string
	for i := range 6 {
		m := newMessage(t, "m")
		if i%2 == 0 {
			m.ChannelID = "general"
			general = append(general, m.ID)
		} else {
			other = append(other, m.ID)
		}
		if _, err := f.messages.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		r    messageapi.MessageRange
		want []string
	}{
		{"first page", messageapi.MessageRange{ChannelID: "general", Limit: 10}, []string{general[2], general[1], general[0]}},
		{"default", messageapi.MessageRange{Limit: 10}, []string{other[2], other[1], other[0]}},
		{"page 2", messageapi.MessageRange{ChannelID: "general", Offset: 1, Limit: 1}, []string{general[1]}},
		{"before", messageapi.MessageRange{ChannelID: "general", BeforeID: general[2], Limit: 10}, []string{general[1], general[0]}},
		{"after", messageapi.MessageRange{ChannelID: "general", AfterID: general[0], Limit: 10}, []string{general[2], general[1]}},
		{"unknown channel", messageapi.MessageRange{ChannelID: "nobody", Limit: 10}, []string{}},
	} {
		page, err := f.messages.ListMessages(ctx, tt.r)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(page); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestReactionWritesNameTheirMessagesChannel: a put and a delete, alone
// or in a group commit, return the channel of the reaction's message,
// which chooses the change's stream partition.
func TestReactionWritesNameTheirMessagesChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newStoreFixture(t)
	group, _, run := groupStore(t, f, postgres.GroupCommitConfig{MaxBatch: 4, Committers: 1})
	run()
	m := newMessage(t, "m")
	m.ChannelID = "general"
	if _, err := f.messages.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	def := f.message(t)
	type writer interface {
		PutReaction(context.Context, messageapi.PutReactionParams) (messageapi.PutReactionResult, error)
		DeleteReaction(context.Context, messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error)
	}
	for name, s := range map[string]writer{"alone": f.reactions, "group_commit": group} {
		for id, want := range map[string]string{m.ID: "general", def: messageapi.DefaultChannel} {
			put, err := s.PutReaction(ctx, putParams(id, "u-"+name, "like", 1))
			if err != nil || put.ChannelID != want {
				t.Errorf("%s: put = %q, %v; want channel %q", name, put.ChannelID, err, want)
			}
			del, err := s.DeleteReaction(ctx, messageapi.DeleteReactionParams{MessageID: id, UserID: "u-" + name, Type: "like", At: time.Now()})
			if err != nil || del.ChannelID != want {
				t.Errorf("%s: delete = %q, %v; want channel %q", name, del.ChannelID, err, want)
			}
		}
	}
}
