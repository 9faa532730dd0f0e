package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

func newMessage(t *testing.T, text string) messageapi.Message {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	return messageapi.Message{
		ID:        id.String(),
		ChannelID: messageapi.DefaultChannel,
		Text:      text,
		UserID:    "alice",
		CreatedAt: messageapi.NewTime(time.Unix(id.Time().UnixTime())),
	}
}

func TestMessageStoreCreateAndGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := postgres.NewMessageStore(postgrestest.NewDB(t))

	m := newMessage(t, "hello")
	created, err := store.CreateMessage(ctx, m)
	if err != nil || !created {
		t.Fatalf("CreateMessage = %v, %v; want true, nil", created, err)
	}
	got, err := store.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if got.Message != m {
		t.Errorf("GetMessage = %+v, want %+v", got.Message, m)
	}
	if got.ReactionCount != 0 || len(got.ReactionCounts) != 0 || len(got.ReactionScores) != 0 || got.Reactions == nil || len(got.Reactions) != 0 || got.Version != 0 {
		t.Errorf("new message view = %+v, want empty reaction data with non-nil maps and list", got)
	}
	if got.ReactionCounts == nil || got.ReactionScores == nil {
		t.Errorf("reaction maps are nil; they must encode as {}")
	}

	// The same id again changes nothing and reports created == false.
	again := m
	again.Text = "other"
	created, err = store.CreateMessage(ctx, again)
	if err != nil || created {
		t.Fatalf("CreateMessage(same id) = %v, %v; want false, nil", created, err)
	}
	got, err = store.GetMessage(ctx, m.ID)
	if err != nil || got.Text != "hello" {
		t.Fatalf("after duplicate create: %+v, %v; want the original text", got, err)
	}
}

func TestMessageStoreGetUnknown(t *testing.T) {
	t.Parallel()
	store := postgres.NewMessageStore(postgrestest.NewDB(t))
	_, err := store.GetMessage(context.Background(), uuid.Must(uuid.NewV7()).String())
	if code := messageapi.ErrorCode(err); code != messageapi.ENOTFOUND {
		t.Fatalf("GetMessage(unknown) code = %q (%v), want %q", code, err, messageapi.ENOTFOUND)
	}
}

func TestMessageStoreListMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := postgres.NewMessageStore(postgrestest.NewDB(t))
	var ids []string // oldest first
	for i := range 25 {
		m := newMessage(t, fmt.Sprintf("m%d", i))
		if _, err := store.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	newest := func(skip, n int) []string {
		var out []string
		for i := len(ids) - 1 - skip; i >= 0 && len(out) < n; i-- {
			out = append(out, ids[i])
		}
		return out
	}
	idsOf := func(vs []messageapi.MessageView) []string {
		out := []string{}
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	tests := []struct {
		name string
		p    messageapi.MessageRange
		want []string
	}{
		{"first page", messageapi.MessageRange{Limit: 10}, newest(0, 10)},
		{"offset", messageapi.MessageRange{Offset: 10, Limit: 10}, newest(10, 10)},
		{"last partial page", messageapi.MessageRange{Offset: 20, Limit: 10}, newest(20, 10)},
		{"past the end", messageapi.MessageRange{Offset: 30, Limit: 10}, []string{}},
		{"before cursor", messageapi.MessageRange{BeforeID: ids[15], Limit: 5}, newest(10, 5)},
		{"before the oldest", messageapi.MessageRange{BeforeID: ids[0], Limit: 5}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.ListMessages(ctx, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(idsOf(got)) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", idsOf(got), tt.want)
			}
		})
	}
}

func TestTranslateUnavailable(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every call must fail as unavailable within
	// the configured timeouts, with no driver text in the client message.
	db, err := postgres.Open(postgres.Config{
		URL:            "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
		QueryTimeout:   time.Second,
		ConnectTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := postgres.NewMessageStore(db)
	start := time.Now()
	_, err = store.GetMessage(context.Background(), uuid.Must(uuid.NewV7()).String())
	if code := messageapi.ErrorCode(err); code != messageapi.EUNAVAILABLE {
		t.Fatalf("code = %q (%v), want %q", code, err, messageapi.EUNAVAILABLE)
	}
	if msg := messageapi.ErrorMessage(err); msg != "database is temporarily unavailable" {
		t.Errorf("client message = %q", msg)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failing call took %v, want it bounded by the timeouts", d)
	}
	var e *messageapi.Error
	if !errors.As(err, &e) || e.Err == nil {
		t.Errorf("cause not kept for logs: %#v", err)
	}
}
