package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/redis/feed"
	"messageapi/redis/redistest"
)

func reactionEvent(i int) messageapi.Event {
	m := uuid.NewString()
	return messageapi.Event{
		Type: messageapi.ReactionNew, MessageID: m,
		Reaction: &messageapi.Reaction{ID: uuid.NewString(), MessageID: m, UserID: fmt.Sprintf("u%d", i), Type: "like", Score: i},
		At:       messageapi.NewTime(time.UnixMilli(1_790_000_000_000 + int64(i))),
	}
}

func appendEvents(t *testing.T, f *feed.Feed, n int) []messageapi.Event {
	t.Helper()
	events := make([]messageapi.Event, n)
	for i := range events {
		events[i] = reactionEvent(i)
		if i%2 == 1 {
			events[i].ChannelID = "general"
		}
	}
	if err := f.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return events
}

func TestFeedKeepsEventsInOrderWithTheirData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := feed.New(redistest.NewClient(t), feed.Config{})

	events := appendEvents(t, f, 5)
	got, err := f.Read(ctx, "0-0", 10, time.Second)
	if err != nil || len(got) != 5 {
		t.Fatalf("Read = %d entries, %v", len(got), err)
	}
	for i, e := range got {
		var decoded messageapi.Event
		if err := json.Unmarshal(e.Data, &decoded); err != nil {
			t.Fatal(err)
		}
		channel := map[bool]string{true: "general", false: messageapi.DefaultChannel}[i%2 == 1] // none: the default one
		if e.Type != events[i].Type || e.MessageID != events[i].MessageID || e.ChannelID != channel || !e.At.Equal(events[i].At.Time) ||
			decoded.Reaction.ID != events[i].Reaction.ID || decoded.Reaction.Score != i {
			t.Errorf("entry %d = %+v (%s), want event %+v", i, e, e.Data, events[i])
		}
		if i > 0 && !mustID(t, e.ID).After(mustID(t, got[i-1].ID)) {
			t.Errorf("entry %d id %s is not after %s", i, e.ID, got[i-1].ID)
		}
	}
	if tail, _, _ := f.Tail(ctx, 1, 1<<30); len(tail) != 1 || tail[0].ID != got[4].ID {
		t.Errorf("Tail(1) = %v, want the newest, %s", tail, got[4].ID)
	}
	// A read after the newest entry waits, and returns nothing.
	start := time.Now()
	if more, err := f.Read(ctx, got[4].ID, 10, 100*time.Millisecond); err != nil || len(more) != 0 || time.Since(start) < 90*time.Millisecond {
		t.Errorf("Read after the last = %d entries, %v after %v", len(more), err, time.Since(start))
	}
}

func mustID(t *testing.T, s string) messageapi.FeedPosition {
	t.Helper()
	id, ok := messageapi.ParseFeedPosition(s)
	if !ok {
		t.Fatalf("%q is not a stream id", s)
	}
	return id
}

// TestFeedSinceTellsWhatItStillHolds: a client resumes after any event the
// feed holds; after one it trimmed, one Redis lost, or an id it never
// made, the feed says it cannot.
func TestFeedSinceTellsWhatItStillHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	f := feed.New(c, feed.Config{MaxLen: 1000})

	if got, kept, err := f.Since(ctx, "0-0", 10); err != nil || !kept || len(got) != 0 {
		t.Fatalf("Since(0-0) on no feed = %d, %v, %v; want nothing missed", len(got), kept, err)
	}
	// The third event a few milliseconds later, so that an id between the
	// second and the third is none of the feed's.
	appendEvents(t, f, 2)
	time.Sleep(3 * time.Millisecond)
	appendEvents(t, f, 1)
	all, _, _ := f.Since(ctx, "0-0", 10)
	if len(all) != 3 {
		t.Fatalf("Since(0-0) = %d entries, want 3", len(all))
	}
	ms, seq, _ := strings.Cut(all[1].ID, "-")
	n, err := strconv.Atoi(seq)
	if err != nil {
		t.Fatal(err)
	}
	foreign := fmt.Sprintf("%s-%d", ms, n+1) // inside the feed's span, not an entry of it
	got, kept, err := f.Since(ctx, all[0].ID, 10)
	if err != nil || !kept || len(got) != 2 || got[0].ID != all[1].ID {
		t.Errorf("Since(first) = %d entries, %v, %v; want the other 2", len(got), kept, err)
	}
	if got, kept, _ := f.Since(ctx, all[0].ID, 1); !kept || len(got) != 1 {
		t.Errorf("Since(first, 1) = %d entries, kept %v", len(got), kept)
	}
	if got, kept, _ := f.Since(ctx, all[2].ID, 10); !kept || len(got) != 0 {
		t.Errorf("Since(last) = %d entries, kept %v; want none, kept", len(got), kept)
	}
	if has, err := f.Has(ctx, all[1].ID); err != nil || !has {
		t.Errorf("Has(held) = %v, %v", has, err)
	}
	for _, id := range []string{"1-0", "99999999999999-0", "junk", "", foreign} {
		if _, kept, err := f.Since(ctx, id, 10); err != nil || kept {
			t.Errorf("Since(%q) = kept %v, %v; want not kept", id, kept, err)
		}
	}

	// Trimmed: the oldest events go, and a client after one of them, or
	// one that has seen nothing, can no longer resume.
	appendEvents(t, f, 3000) // MAXLEN ~ trims whole nodes, so append plenty
	if has, _ := f.Has(ctx, all[0].ID); has {
		t.Fatal("the feed was not trimmed")
	}
	for _, id := range []string{all[0].ID, "0-0"} {
		if _, kept, err := f.Since(ctx, id, 10); err != nil || kept {
			t.Errorf("Since(%s) after a trim = kept %v, %v", id, kept, err)
		}
	}

	// Lost: the feed is gone (as when Redis restarts empty) and a new one
	// begins.
	if err := c.Redis().Del(ctx, f.Key()).Err(); err != nil {
		t.Fatal(err)
	}
	last := all[2].ID
	appendEvents(t, f, 2)
	if _, kept, _ := f.Since(ctx, last, 10); kept {
		t.Error("Since(an id of the lost feed) = kept")
	}
	if has, _ := f.Has(ctx, last); has {
		t.Error("Has(an id of the lost feed) = true")
	}
	if has, _ := f.Has(ctx, "0-0"); !has {
		t.Error("Has(0-0) = false")
	}
}

// TestFeedTailStartsAWindow: Tail gives the newest events and the id
// after which nothing is missing from them.
func TestFeedTailStartsAWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.NewClient(t)
	f := feed.New(c, feed.Config{MaxLen: 1000})
	ids := func(es []messageapi.FeedEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.ID
		}
		return out
	}

	if got, from, err := f.Tail(ctx, 10, 1<<30); err != nil || len(got) != 0 || from != "0-0" {
		t.Fatalf("Tail of no feed = %d entries from %q, %v", len(got), from, err)
	}
	appendEvents(t, f, 5)
	all, _, _ := f.Since(ctx, "0-0", 10)
	if got, from, err := f.Tail(ctx, 10, 1<<30); err != nil || from != "0-0" || fmt.Sprint(ids(got)) != fmt.Sprint(ids(all)) {
		t.Errorf("Tail(10) of 5 = %v from %q, %v; want all from 0-0", ids(got), from, err)
	}
	if got, from, _ := f.Tail(ctx, 3, 1<<30); from != all[1].ID || fmt.Sprint(ids(got)) != fmt.Sprint(ids(all[2:])) {
		t.Errorf("Tail(3) of 5 = %v from %q; want the newest 3 from %s", ids(got), from, all[1].ID)
	}
	if got, from, _ := f.Tail(ctx, 10, 1); len(got) != 0 || from != all[4].ID {
		t.Errorf("Tail(10, 1 byte) of 5 = %v from %q; want none, from the newest", ids(got), from)
	}

	appendEvents(t, f, 3000) // trims the oldest
	if _, kept, _ := f.Since(ctx, "0-0", 1); kept {
		t.Fatal("the feed was not trimmed")
	}
	got, from, err := f.Tail(ctx, 5000, 1<<30)
	if err != nil || len(got) == 0 || len(got) >= 3005 {
		t.Fatalf("Tail(5000) after a trim = %d entries, %v", len(got), err)
	}
	if rest, kept, _ := f.Since(ctx, from, 5000); !kept || fmt.Sprint(ids(rest)) != fmt.Sprint(ids(got)) {
		t.Errorf("Tail after a trim starts from %q, but the feed holds %d entries after it, not the %d given", from, len(rest), len(got))
	}

	if err := c.Redis().XTrimMaxLen(ctx, f.Key(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1].ID
	if got, from, err := f.Tail(ctx, 10, 1<<30); err != nil || len(got) != 0 || from != last {
		t.Errorf("Tail of an emptied feed = %d entries from %q, %v; want none from %s", len(got), from, err, last)
	}
}

// TestFeedPublishAppendsInTheBackground: Publish queues without waiting,
// and Run appends what was queued, in order.
func TestFeedPublishAppendsInTheBackground(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	f := feed.New(redistest.NewClient(t), feed.Config{})
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx, time.Second) }()
	var sent []string
	for i := range 20 {
		e := reactionEvent(i)
		sent = append(sent, e.MessageID)
		if err := f.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	got, err := f.Read(context.Background(), "0-0", 100, 0)
	if err != nil || len(got) != len(sent) {
		t.Fatalf("Read = %d entries, %v; want %d", len(got), err, len(sent))
	}
	for i, e := range got {
		if e.MessageID != sent[i] {
			t.Fatalf("entry %d is of message %s, want %s", i, e.MessageID, sent[i])
		}
	}
}
