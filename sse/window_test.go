package sse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"messageapi"
)

func feedEntry(ms uint64, seq uint64, data string) messageapi.FeedEntry {
	return messageapi.FeedEntry{ID: messageapi.FeedPosition{Ms: ms, Seq: seq}.String(), Type: "message.new", MessageID: "m", Data: []byte(data)}
}

func windowIDs(entries []windowEntry) string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return strings.Join(ids, " ")
}

func TestFeedWindowAnswersWhatItHolds(t *testing.T) {
	t.Parallel()
	w := newFeedWindow(4, 1<<20)
	w.reset(messageapi.FeedPosition{Ms: 100})
	w.add([]messageapi.FeedEntry{feedEntry(101, 0, "a"), feedEntry(101, 1, "b"), feedEntry(105, 0, "c")})

	for _, tt := range []struct {
		after  messageapi.FeedPosition
		want   string
		answer windowAnswer
	}{
		{messageapi.FeedPosition{Ms: 100}, "101-0 101-1 105-0", inWindow}, // the start: all of it
		{messageapi.FeedPosition{Ms: 101}, "101-1 105-0", inWindow},
		{messageapi.FeedPosition{Ms: 101, Seq: 1}, "105-0", inWindow},
		{messageapi.FeedPosition{Ms: 105}, "", inWindow},  // the newest: nothing missed
		{messageapi.FeedPosition{Ms: 103}, "", notInFeed}, // inside, but no entry of this feed
		{messageapi.FeedPosition{Ms: 99}, "", outside},    // older than the window
		{messageapi.FeedPosition{}, "", outside},
		{messageapi.FeedPosition{Ms: 106}, "", outside}, // newer than the hub has read
	} {
		got, answer := w.since(tt.after)
		if windowIDs(got) != tt.want || answer != tt.answer {
			t.Errorf("since(%s) = [%s], %d; want [%s], %d", tt.after, windowIDs(got), answer, tt.want, tt.answer)
		}
	}

	// A window that starts at 0-0 holds the whole feed.
	w.reset(messageapi.FeedPosition{})
	w.add([]messageapi.FeedEntry{feedEntry(7, 0, "x")})
	if got, answer := w.since(messageapi.FeedPosition{}); windowIDs(got) != "7-0" || answer != inWindow {
		t.Errorf("since(0-0) of a whole feed = [%s], %d", windowIDs(got), answer)
	}
}

func TestFeedWindowForgetsTheOldestBeyondItsBounds(t *testing.T) {
	t.Parallel()
	w := newFeedWindow(3, 1<<20)
	w.reset(messageapi.FeedPosition{})
	for ms := uint64(1); ms <= 5; ms++ {
		w.add([]messageapi.FeedEntry{feedEntry(ms, 0, "x")})
	}
	if got, _ := w.since(messageapi.FeedPosition{Ms: 2}); windowIDs(got) != "3-0 4-0 5-0" || w.from != (messageapi.FeedPosition{Ms: 2}) {
		t.Fatalf("after 5 adds to a window of 3: from %s, since(2-0) = [%s]", w.from, windowIDs(got))
	}
	if _, answer := w.since(messageapi.FeedPosition{Ms: 1}); answer != outside {
		t.Errorf("since(1-0), forgotten, = %d; want outside", answer)
	}
	if _, answer := w.since(messageapi.FeedPosition{}); answer != outside {
		t.Errorf("since(0-0) of a window that forgot = %d; want outside", answer)
	}

	// Bytes bound it too.
	big := strings.Repeat("d", 600)
	b := newFeedWindow(1000, 2*(entryOverhead+600+len("1-0")+len("message.new")+1))
	b.reset(messageapi.FeedPosition{})
	b.add([]messageapi.FeedEntry{feedEntry(1, 0, big), feedEntry(2, 0, big), feedEntry(3, 0, big)})
	if got, answer := b.since(b.from); windowIDs(got) != "2-0 3-0" || answer != inWindow || b.bytes > b.maxBytes {
		t.Errorf("a window of two entries' bytes holds [%s] (%d bytes of %d)", windowIDs(got), b.bytes, b.maxBytes)
	}
}

// TestFeedWindowSnapshotsStayValid: what since returned does not change
// while the window moves on, so a replay needs no copy.
func TestFeedWindowSnapshotsStayValid(t *testing.T) {
	t.Parallel()
	w := newFeedWindow(4, 1<<20)
	w.reset(messageapi.FeedPosition{})
	w.add([]messageapi.FeedEntry{feedEntry(1, 0, "a"), feedEntry(2, 0, "b"), feedEntry(3, 0, "c")})
	snapshot, _ := w.since(messageapi.FeedPosition{})
	for ms := uint64(4); ms < 100; ms++ {
		w.add([]messageapi.FeedEntry{feedEntry(ms, 0, fmt.Sprint(ms))})
	}
	if windowIDs(snapshot) != "1-0 2-0 3-0" || string(snapshot[0].Data) != "a" || string(snapshot[2].Data) != "c" {
		t.Errorf("a snapshot became [%s]", windowIDs(snapshot))
	}
	if cap(w.entries) > 4*w.maxEvents {
		t.Errorf("the window of %d entries keeps an array of %d", w.maxEvents, cap(w.entries))
	}

	// Many small entries, then large ones bound by bytes: what was dropped
	// stays within the bounds too.
	b := newFeedWindow(1000, 64<<10)
	b.reset(messageapi.FeedPosition{})
	for ms := uint64(1); ms <= 1000; ms++ {
		b.add([]messageapi.FeedEntry{feedEntry(ms, 0, "x")})
	}
	big := strings.Repeat("d", 8<<10)
	for ms := uint64(1001); ms <= 2000; ms++ {
		b.add([]messageapi.FeedEntry{feedEntry(ms, 0, big)})
		if b.dead > len(b.entries) || b.deadBytes > b.maxBytes/2 || b.bytes > b.maxBytes {
			t.Fatalf("after %d: %d entries of %d bytes held, %d dropped of %d bytes still in the array", ms, len(b.entries), b.bytes, b.dead, b.deadBytes)
		}
	}
}

func TestBulkheadBoundsAndWaits(t *testing.T) {
	t.Parallel()
	b := newBulkhead(2)
	ctx := context.Background()
	for i := range 2 {
		if ok, waited := b.acquire(ctx, time.Second); !ok || waited {
			t.Fatalf("acquire %d of 2 = %v, waited %v", i+1, ok, waited)
		}
	}
	start := time.Now()
	if ok, _ := b.acquire(ctx, 20*time.Millisecond); ok {
		t.Fatal("a third place was given")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("a refusal did not wait its time")
	}
	go func() { time.Sleep(10 * time.Millisecond); b.release() }()
	if ok, waited := b.acquire(ctx, 5*time.Second); !ok || !waited {
		t.Errorf("after a release: acquire = %v, waited %v", ok, waited)
	}
}
