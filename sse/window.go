package sse

import (
	"context"
	"slices"
	"sort"
	"time"

	"messageapi"
)

// Default bounds of the feed window.
const (
	DefaultWindowEvents = 10_000
	DefaultWindowBytes  = 16 << 20
	// entryOverhead is what one held entry costs beside its strings and
	// data: the struct, its parsed id and the slice slot.
	entryOverhead = 128
)

// windowEntry is one entry of the window, with its id parsed once.
type windowEntry struct {
	id messageapi.FeedPosition
	messageapi.FeedEntry
}

// feedWindow is the newest part of the live feed, held in memory by the
// hub, so that clients resuming inside it are served with no Redis call.
// It holds every entry of the feed after from, up to the hub's position,
// and nothing else; it is bounded by a number of entries and by bytes,
// and forgets its oldest entries first. Callers hold the hub's lock.
//
// A snapshot (since) is a subslice of entries, not a copy: the window
// only appends and drops from the front, and never writes an element
// twice, so a snapshot stays valid while the window moves on. Dropped
// entries stay in the array's unused front until the window copies what
// it holds to a new array, which it does once they outnumber the held
// ones or take half of maxBytes; the old array goes when no snapshot
// holds it. So the window costs at most about twice its bounds.
type feedWindow struct {
	maxEvents, maxBytes int
	from                messageapi.FeedPosition // every entry after it is held
	entries             []windowEntry
	bytes               int
	// dead and deadBytes are the dropped entries still in the array.
	dead, deadBytes int
}

func newFeedWindow(maxEvents, maxBytes int) *feedWindow {
	if maxEvents <= 0 {
		maxEvents = DefaultWindowEvents
	}
	if maxBytes <= 0 {
		maxBytes = DefaultWindowBytes
	}
	return &feedWindow{maxEvents: maxEvents, maxBytes: maxBytes}
}

func entrySize(e messageapi.FeedEntry) int {
	return entryOverhead + len(e.ID) + len(e.Type) + len(e.MessageID) + len(e.ChannelID) + len(e.Data)
}

// reset empties the window: it holds everything after from, which is
// nothing yet.
func (w *feedWindow) reset(from messageapi.FeedPosition) {
	w.from, w.entries, w.bytes, w.dead, w.deadBytes = from, nil, 0, 0, 0
}

// add appends entries that follow the window's last, oldest first, and
// forgets the oldest beyond the bounds.
func (w *feedWindow) add(entries []messageapi.FeedEntry) {
	for _, e := range entries {
		id, _ := messageapi.ParseFeedPosition(e.ID)
		w.entries = append(w.entries, windowEntry{id: id, FeedEntry: e})
		w.bytes += entrySize(e)
	}
	for len(w.entries) > 0 && (len(w.entries) > w.maxEvents || w.bytes > w.maxBytes) {
		size := entrySize(w.entries[0].FeedEntry)
		w.from = w.entries[0].id
		w.bytes -= size
		w.dead++
		w.deadBytes += size
		w.entries = w.entries[1:]
	}
	if w.dead > len(w.entries) || w.deadBytes > w.maxBytes/2 {
		w.entries = slices.Clone(w.entries)
		w.dead, w.deadBytes = 0, 0
	}
}

// last is the id of the newest entry held, or from when none is.
func (w *feedWindow) last() messageapi.FeedPosition {
	if len(w.entries) == 0 {
		return w.from
	}
	return w.entries[len(w.entries)-1].id
}

// windowAnswer is what the window knows of a position.
type windowAnswer int

const (
	// inWindow: the entries after the position are those returned.
	inWindow windowAnswer = iota
	// notInFeed: the position lies inside the window but is no entry of
	// the feed (another feed's id, or one from before Redis lost it).
	notInFeed
	// outside: older than the window, or newer than this process has
	// read; only the feed itself can tell.
	outside
)

// since returns the entries after the position after.
func (w *feedWindow) since(after messageapi.FeedPosition) ([]windowEntry, windowAnswer) {
	switch {
	case after == w.from:
		return w.entries, inWindow
	case w.from.After(after) || after.After(w.last()):
		return nil, outside
	}
	i := sort.Search(len(w.entries), func(i int) bool { return !after.After(w.entries[i].id) })
	if i == len(w.entries) || w.entries[i].id != after {
		return nil, notInFeed
	}
	return w.entries[i+1:], inWindow
}

// bulkhead caps the deep resumes (those the window cannot serve) that run
// at once; each reads the feed from Redis page by page.
type bulkhead chan struct{}

func newBulkhead(n int) bulkhead { return make(bulkhead, max(n, 1)) }

// acquire takes a place, waiting at most wait for one; it reports whether
// it got one and whether it had to wait. release gives it back.
func (b bulkhead) acquire(ctx context.Context, wait time.Duration) (ok, waited bool) {
	select {
	case b <- struct{}{}:
		return true, false
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case b <- struct{}{}:
		return true, true
	case <-t.C:
	case <-ctx.Done():
	}
	return false, true
}

func (b bulkhead) release() { <-b }
