package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/redis"
	"messageapi/redis/redistest"
	"messageapi/redis/stream"
)

// newConsumer returns a client on a key prefix of its own, its stream, and
// the consumer c1 of group g, created.
func newConsumer(t *testing.T) (*redis.Client, *stream.Stream, *stream.Consumer) {
	t.Helper()
	c := redistest.NewClient(t)
	s := stream.New(c, stream.Config{Partitions: 1})
	consumer := s.Consumer(0, "g", "c1")
	if err := consumer.EnsureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, s, consumer
}

func TestStreamDecodesOnlyWellFormedEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, s, consumer := newConsumer(t)
	good := messageapi.ReactionChanged{ReactionID: uuid.NewString(), MessageID: uuid.NewString(), Version: 3, ChangedAt: time.UnixMilli(1_790_000_000_000)}
	if err := s.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	for _, values := range [][]any{
		{"reaction_id", "not-a-uuid", "message_id", uuid.NewString(), "version", "1", "changed_at_ms", "1"},
		{"reaction_id", uuid.NewString(), "message_id", uuid.NewString(), "version", "x", "changed_at_ms", "1"},
		{"junk", "1"},
	} {
		if err := c.Redis().XAdd(ctx, &goredis.XAddArgs{Stream: s.Key(0), Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := consumer.Read(ctx, 10, time.Second)
	if err != nil || len(entries) != 4 {
		t.Fatalf("Read = %d entries, %v; want 4", len(entries), err)
	}
	if e := entries[0]; e.Invalid != "" || e.Event.ReactionID != good.ReactionID || e.Event.Version != 3 || !e.Event.ChangedAt.Equal(good.ChangedAt) {
		t.Errorf("good entry decoded as %+v", e)
	}
	for _, e := range entries[1:] {
		if e.Invalid == "" {
			t.Errorf("malformed entry %s accepted: %+v", e.ID, e.Event)
		}
	}
}

// TestDeadLetterKeepsEntriesItCannotCopy: when the copy to the dead-letter
// stream fails, the entry stays pending rather than vanish.
func TestDeadLetterKeepsEntriesItCannotCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, s, consumer := newConsumer(t)
	if err := c.Redis().XAdd(ctx, &goredis.XAddArgs{Stream: s.Key(0), Values: []any{"junk", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	entries, err := consumer.Read(ctx, 10, time.Second)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Read = %v, %v", entries, err)
	}
	if err := c.Redis().Set(ctx, s.DeadLetterKey(0), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := consumer.DeadLetter(ctx, entries, "test"); err == nil {
		t.Fatal("DeadLetter into a string key succeeded")
	}
	if b, err := consumer.Backlog(ctx); err != nil || b.Pending != 1 {
		t.Fatalf("pending = %d, %v; want the entry still pending", b.Pending, err)
	}
	if err := c.Redis().Del(ctx, s.DeadLetterKey(0)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := consumer.DeadLetter(ctx, entries, "test"); err != nil {
		t.Fatal(err)
	}
	if b, _ := consumer.Backlog(ctx); b.Pending != 0 {
		t.Errorf("pending = %d after a successful dead-letter", b.Pending)
	}
	if n, _ := c.Redis().XLen(ctx, s.DeadLetterKey(0)).Result(); n != 1 {
		t.Errorf("dead-letter stream holds %d entries, want 1", n)
	}
}

// TestStreamPartitionsByChannel: the changes of every message of a named
// channel go to one partition; those of the default channel spread by
// message.
func TestStreamPartitionsByChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	s := stream.New(c, stream.Config{Partitions: 8})
	for range 40 {
		for _, ch := range []string{"general", messageapi.DefaultChannel} {
			e := messageapi.ReactionChanged{ReactionID: uuid.NewString(), MessageID: uuid.NewString(), ChannelID: ch, Version: 1, ChangedAt: time.Now()}
			if err := s.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	general := stream.PartitionOf(stream.PartitionKey("general", uuid.NewString()), 8)
	used := 0
	for p := range 8 {
		n, err := c.Redis().XLen(ctx, s.Key(p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if p == general && n < 40 {
			t.Errorf("general's partition %d holds %d entries, want its 40 and some of the default channel's", p, n)
		}
		if n > 0 {
			used++
		}
	}
	if used < 4 {
		t.Errorf("the 80 changes used %d of 8 partitions; the default channel's 40 messages should spread", used)
	}
}

// TestBacklogSaysWhenUnreadIsUnknown: after an entry the group has not
// read is deleted, Redis cannot count the unread entries (XINFO GROUPS
// gives no lag), and Backlog says so with Unread -1 rather than a count;
// once the group has read past the gap the count is known again.
func TestBacklogSaysWhenUnreadIsUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, s, consumer := newConsumer(t)
	var ids []string
	for range 3 {
		id, err := c.Redis().XAdd(ctx, &goredis.XAddArgs{Stream: s.Key(0), Values: []any{"junk", "1"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if b, err := consumer.Backlog(ctx); err != nil || b.Unread != 3 {
		t.Fatalf("Backlog = %+v, %v; want 3 unread", b, err)
	}
	if err := c.Redis().XDel(ctx, s.Key(0), ids[1]).Err(); err != nil {
		t.Fatal(err)
	}
	if b, err := consumer.Backlog(ctx); err != nil || b.Unread != -1 {
		t.Fatalf("Backlog after a deletion the group has not read past = %+v, %v; want Unread -1", b, err)
	}
	if entries, err := consumer.Read(ctx, 10, time.Second); err != nil || len(entries) != 2 {
		t.Fatalf("Read = %d entries, %v; want 2", len(entries), err)
	}
	if b, err := consumer.Backlog(ctx); err != nil || b.Unread != 0 || b.Pending != 2 {
		t.Errorf("Backlog after reading past the gap = %+v, %v; want 0 unread, 2 pending", b, err)
	}
}
