package sse

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"messageapi"
)

// Request is a client's GET /events, parsed and checked by the caller.
type Request struct {
	// Filter says which events the client wants; the zero Filter wants
	// all.
	Filter Filter
	// LastID is the position the client resumes after (its Last-Event-ID,
	// the text of a messageapi.FeedPosition); "": it starts afresh.
	LastID string
	// Duration ends the stream after it; 0: the stream lasts until the
	// client or the server ends it.
	Duration time.Duration
	// Log is the request's logger.
	Log *slog.Logger
}

// Filter selects the events of some messages and channels. An event is
// wanted when its message is one of Messages or its channel one of
// Channels; when both are nil, every event is.
type Filter struct {
	Messages map[string]bool // message ids
	Channels map[string]bool // channel ids
}

// Wants reports whether the filter selects e.
func (f Filter) Wants(e messageapi.FeedEntry) bool {
	if f.Messages == nil && f.Channels == nil {
		return true
	}
	return f.Messages[e.MessageID] || f.Channels[e.ChannelID]
}

// Serve streams live events to a client as Server-Sent Events. Each event's id
// is its position in the feed; a client that reconnects with it as
// Last-Event-ID gets what it missed, or a reset event when the feed no
// longer holds it. A ready event marks the end of the replay.
//
// A resume inside the hub's window is served from memory. One from before
// it reads the feed, and waits its turn for that (deepResumeWait at most).
// One that does not get a turn gets a stream that only says when to come
// back (retry:) and ends: a browser's EventSource then reconnects by
// itself with the same Last-Event-ID, which it would not do after a 503.
//
// It returns an error, for the caller to answer, only before the stream
// has started: the live events are unavailable, or the hub is full.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, req Request) error {
	ctx := r.Context()
	if err := h.awaitWarm(ctx, warmWait); err != nil {
		return err
	}
	var after *messageapi.FeedPosition
	if req.LastID != "" {
		id := mustPosition(req.LastID)
		after = &id
	}
	sub, pos, res, err := h.subscribe(req.Filter, after)
	if err != nil {
		return err
	}
	defer h.unsubscribe(sub)
	deep := after != nil && res.answer == outside && r.Method != http.MethodHead
	turn := false // holds a place among the deep resumes
	if deep {
		var waited bool
		turn, waited = h.deep.acquire(ctx, deepResumeWait)
		h.metrics.deepResume(turn, waited)
	}
	release := func() {
		if turn {
			turn = false
			h.deep.release()
		}
	}
	defer release()
	if req.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Duration)
		defer cancel()
	}
	out := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: h.cfg.WriteTimeout, metrics: h.metrics}
	// The server's read deadline would end the stream; the client sends
	// nothing more, and its disconnect still cancels ctx.
	_ = out.rc.SetReadDeadline(time.Time{})
	header := w.Header()
	header.Set("Content-Type", "text/event-stream")
	header.Set("Cache-Control", "no-store")
	header.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// Clients that lose their streams together (a restart, a network
	// blip) come back spread over a few seconds, not in step.
	out.buf.WriteString("retry: " + strconv.Itoa(1000+rand.IntN(4000)) + "\n\n")
	if deep && !turn { // come back later, from the same position
		_ = out.flush()
		return nil
	}

	cursor := pos
	switch {
	case after == nil:
	case deep:
		h.metrics.resumes.WithLabelValues("feed").Inc()
		var ok bool
		cursor, ok = h.replay(ctx, out, req, pos, sub.gone)
		release() // the live stream needs no place
		if !ok {
			return nil
		}
		if a, _ := messageapi.ParseFeedPosition(cursor); !a.After(mustPosition(pos)) {
			cursor = pos
		}
	case res.answer == notInFeed:
		h.metrics.resumes.WithLabelValues("window").Inc()
		h.metrics.resets.Inc()
		out.event("reset", pos, []byte("{}"), time.Time{})
	default:
		h.metrics.resumes.WithLabelValues("window").Inc()
		if !h.replayWindow(out, req.Filter, res.entries, sub.gone) {
			return nil
		}
	}
	out.event("ready", cursor, []byte("{}"), time.Time{})
	if out.flush() != nil {
		return nil
	}
	last := mustPosition(cursor)
	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.gone:
			return nil
		case <-heartbeat.C:
			out.buf.WriteString(": ping\n\n")
		case d := <-sub.ch:
			for more := true; more; {
				last = out.deliver(d, last)
				select {
				case d = <-sub.ch:
				default:
					more = false
				}
			}
		}
		if out.flush() != nil {
			return nil
		}
	}
}

// replayWindow sends the client the entries of the window it missed, in
// chunks of replayChunk bytes. It reports false when the stream must end.
func (h *Hub) replayWindow(out *sseWriter, filter Filter, entries []windowEntry, gone <-chan struct{}) bool {
	for _, e := range entries {
		select {
		case <-gone: // dropped meanwhile (shutdown, or too far behind)
			return false
		default:
		}
		if out.replayed(filter, e.FeedEntry) != nil {
			return false
		}
	}
	return true
}

// replay sends what the client missed after req.LastID, up to pos, where
// the live stream takes over, reading it from the feed a page at a time.
// It returns the last position sent, or false when the stream must end
// (the feed is unavailable, or the hub dropped the client; it retries).
func (h *Hub) replay(ctx context.Context, out *sseWriter, req Request, pos string, gone <-chan struct{}) (string, bool) {
	cursor, end := req.LastID, mustPosition(pos)
	for {
		select {
		case <-gone: // dropped meanwhile (shutdown, or too far behind)
			return "", false
		default:
		}
		entries, kept, err := h.deepFeed.Since(ctx, cursor, replayPage)
		if err != nil {
			req.Log.WarnContext(ctx, "live events: resume failed", "err", err)
			return "", false
		}
		if !kept {
			h.metrics.resets.Inc()
			out.event("reset", pos, []byte("{}"), time.Time{})
			return pos, true
		}
		sent := 0
		for _, e := range entries {
			if mustPosition(e.ID).After(end) {
				break // the live stream brings it
			}
			if out.replayed(req.Filter, e) != nil {
				return "", false
			}
			cursor = e.ID
			sent++
		}
		if sent < len(entries) || len(entries) < replayPage {
			return cursor, true
		}
	}
}

func mustPosition(s string) messageapi.FeedPosition {
	id, _ := messageapi.ParseFeedPosition(s)
	return id
}

// sseWriter writes events to one client, buffering them until flush.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	metrics *metrics
	buf     bytes.Buffer
	events  int         // buffered events
	times   []time.Time // commit times of the buffered live events
}

// deliver writes d unless the client has it already (its id is not after
// last, when the client resumed ahead of this process's feed), and
// returns the new last.
func (o *sseWriter) deliver(d delivery, last messageapi.FeedPosition) messageapi.FeedPosition {
	id := mustPosition(d.entry.ID)
	if d.reset {
		o.metrics.resets.Inc()
		o.event("reset", d.entry.ID, []byte("{}"), time.Time{})
		return id
	}
	if !id.After(last) {
		return last
	}
	o.event(d.entry.Type, d.entry.ID, d.entry.Data, d.entry.At)
	return id
}

// replayed buffers an entry of a replay, when filter wants it, and writes
// the buffer once it holds replayChunk bytes, so that a client that does
// not read holds little.
func (o *sseWriter) replayed(filter Filter, e messageapi.FeedEntry) error {
	if !filter.Wants(e) {
		return nil
	}
	o.event(e.Type, e.ID, e.Data, time.Time{}) // a replay is not live: no lag
	if o.buf.Len() < replayChunk {
		return nil
	}
	return o.flush()
}

// event buffers one event; at is when its change was committed, zero for
// the stream's own events and replayed ones, which have no delivery lag.
func (o *sseWriter) event(typ, id string, data []byte, at time.Time) {
	o.events++
	o.buf.WriteString("id: ")
	o.buf.WriteString(id)
	o.buf.WriteString("\nevent: ")
	o.buf.WriteString(typ)
	o.buf.WriteString("\ndata: ")
	o.buf.Write(data)
	o.buf.WriteString("\n\n")
	if !at.IsZero() {
		o.times = append(o.times, at)
	}
}

// flush writes the buffered events within the write timeout. A client
// that does not take them in time is cut off.
func (o *sseWriter) flush() error {
	if o.buf.Len() == 0 {
		return nil
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := o.w.Write(o.buf.Bytes())
	if err == nil {
		err = o.rc.Flush()
	}
	o.buf.Reset()
	events, times := o.events, o.times
	o.events, o.times = 0, o.times[:0]
	if err != nil {
		o.metrics.dropped.WithLabelValues("write").Inc()
		return err
	}
	now := time.Now()
	for _, at := range times {
		o.metrics.lag.Observe(now.Sub(at).Seconds())
	}
	o.metrics.events.Add(float64(events))
	return nil
}
