package sse

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/internal/retry"
)

// Feed is the live feed as the hub reads it. Positions are the text of
// messageapi.FeedPosition.
type Feed interface {
	// Read waits up to block for entries after the id after.
	Read(ctx context.Context, after string, count int, block time.Duration) ([]messageapi.FeedEntry, error)
	// Tail returns the newest entries, at most count and about maxBytes,
	// oldest first, and the id after which the feed holds nothing before
	// them.
	Tail(ctx context.Context, count, maxBytes int) ([]messageapi.FeedEntry, string, error)
	// Has reports whether the feed still holds the entry with the id id.
	Has(ctx context.Context, id string) (bool, error)
	// Since returns the entries after the id after, and whether the feed
	// still holds all of them.
	Since(ctx context.Context, after string, count int) ([]messageapi.FeedEntry, bool, error)
}

const (
	// replayPage is how many entries one read of a deep resume takes.
	replayPage = 500
	// replayChunk is how many bytes of a replay are buffered before they
	// are written, so a client that does not read holds little.
	replayChunk = 16 << 10
	// warmWait is how long a client waits for the hub to find its place
	// in the feed (its first read, when the process starts).
	warmWait = 3 * time.Second
	// deepResumeWait is how long a deep resume waits for its turn.
	deepResumeWait = time.Second
)

// Config configures the live-event hub.
type Config struct {
	// MaxClients caps the streams one process holds; more get 503.
	MaxClients int
	// Buffer is how many events a client may fall behind before it is
	// dropped; it resumes losslessly with Last-Event-ID.
	Buffer int
	// Heartbeat is how often an idle stream gets a comment, so proxies and
	// clients see it alive.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// Block is how long one read of the feed waits. Keep it short: a
	// blocked read does not end when its context does, and shutdown
	// waits for it.
	Block time.Duration
	// WindowEvents and WindowBytes bound the window of the feed held in
	// memory, from which resumes are served; 0: DefaultWindowEvents,
	// DefaultWindowBytes.
	WindowEvents, WindowBytes int
	// DeepResumes caps the resumes from before the window that read the
	// feed at once.
	DeepResumes int
}

// Hub reads the live feed once per process and fans each entry out to the
// process's SSE clients. It keeps its position in the feed, so a read
// that fails resumes where the last one ended; when the feed no longer
// holds that position (Redis lost it, or trimmed past it), every client
// gets a reset.
//
// It keeps the newest entries it read in a window, filled at start with
// one read of the feed's tail, so that the clients that reconnect after
// a restart or a network blip, all at once, resume from memory. Resumes
// from before the window read the feed page by page, a few at a time
// (deep), on a feed of their own that a deployment gives its own Redis
// connections.
type Hub struct {
	feed     Feed
	deepFeed Feed
	deep     bulkhead
	log      *slog.Logger
	metrics  *metrics
	cfg      Config
	warm     chan struct{} // closed once the hub knows its position

	mu      sync.Mutex
	clients map[*subscriber]struct{}
	last    string // the id of the last entry fanned out; "" until known
	window  *feedWindow
	closed  bool
}

// subscriber is one SSE client of the hub.
type subscriber struct {
	filter Filter
	ch     chan delivery
	gone   chan struct{} // closed when the hub drops the client
}

// delivery is one entry for a client, or a reset to the position entry.ID.
type delivery struct {
	entry messageapi.FeedEntry
	reset bool
}

// NewHub returns the hub of feed, which registers its metrics with reg.
// Run must run for it to serve.
func NewHub(feed Feed, log *slog.Logger, reg prometheus.Registerer, cfg Config) *Hub {
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	return &Hub{feed: feed, deepFeed: feed, deep: newBulkhead(cfg.DeepResumes), log: log, metrics: newMetrics(reg), cfg: cfg,
		warm: make(chan struct{}), clients: map[*subscriber]struct{}{}, window: newFeedWindow(cfg.WindowEvents, cfg.WindowBytes)}
}

// ResumeFrom makes deep resumes read feed instead of the hub's own, for
// example one on a Redis client with a pool and breaker of its own. Call
// it before Run.
func (h *Hub) ResumeFrom(feed Feed) { h.deepFeed = feed }

// Run reads the feed and fans it out until ctx is done.
func (h *Hub) Run(ctx context.Context) {
	failures := 0
	wait := retry.Policy(100*time.Millisecond, 2*time.Second)
	fail := func(what string, err error) {
		failures++
		h.metrics.readErrors.Inc()
		if retry.Logged(failures) {
			h.log.Warn("live feed "+what+" failed; retrying", "failures", failures, "err", err)
		}
		sleep(ctx, wait.NextBackOff())
	}
	for ctx.Err() == nil {
		pos := h.Position()
		if pos == "" {
			entries, from, err := h.deepFeed.Tail(ctx, h.window.maxEvents, h.window.maxBytes)
			if err != nil {
				fail("start", err)
				continue
			}
			h.restart(entries, from, false)
			continue
		}
		entries, err := h.feed.Read(ctx, pos, replayPage, h.cfg.Block)
		if err != nil {
			if ctx.Err() == nil {
				fail("read", err)
			}
			continue
		}
		// The read came from the feed the hub was following only if that
		// still holds the hub's position: a Redis that restarted empty
		// (which a retried read does not notice) or a trim past the
		// position lost events, so every client must start afresh.
		held := true
		if h.positionIsEntry() {
			if held, err = h.feed.Has(ctx, pos); err != nil {
				if ctx.Err() == nil {
					fail("check", err)
				}
				continue // the entries are read again
			}
		}
		failures = 0
		wait.Reset()
		if !held {
			entries, from, err := h.deepFeed.Tail(ctx, h.window.maxEvents, h.window.maxBytes)
			if err != nil {
				fail("check", err)
				continue
			}
			now := h.restart(entries, from, true)
			h.log.Warn("live feed lost events; clients are told to refetch", "was", pos, "now", now)
			continue
		}
		h.broadcast(entries)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Position is the position of the last entry the hub fanned out, "" until
// it knows its place in the feed.
func (h *Hub) Position() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// positionIsEntry reports whether the hub's position is the id of an
// entry it read, which the feed must still hold. Until the hub has read
// one, its position may be a bound the feed never held as an entry (the
// last id of a feed trimmed empty), and nothing lies between that bound
// and what the hub reads next.
func (h *Hub) positionIsEntry() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.window.entries) > 0
}

// restart starts the window afresh with the newest entries of the feed,
// which it holds everything of after from, and moves the hub's position
// to the last of them; with reset it tells every client. It returns the
// new position.
func (h *Hub) restart(entries []messageapi.FeedEntry, from string, reset bool) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.window.reset(mustPosition(from))
	h.window.add(entries)
	h.last = h.window.last().String()
	h.metrics.window(h.window)
	select {
	case <-h.warm:
	default:
		close(h.warm)
	}
	if reset {
		for s := range h.clients {
			h.send(s, delivery{entry: messageapi.FeedEntry{ID: h.last}, reset: true})
		}
	}
	return h.last
}

// awaitWarm waits, at most wait, for the hub to know its position.
func (h *Hub) awaitWarm(ctx context.Context, wait time.Duration) error {
	select {
	case <-h.warm:
		return nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-h.warm:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	return messageapi.Errorf(messageapi.EUNAVAILABLE, "live events are unavailable")
}

// broadcast gives each entry to the clients that want it. A client whose
// buffer is full is dropped rather than waited for.
func (h *Hub) broadcast(entries []messageapi.FeedEntry) {
	if len(entries) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		for s := range h.clients {
			if s.filter.Wants(e) {
				h.send(s, delivery{entry: e})
			}
		}
	}
	h.last = entries[len(entries)-1].ID
	h.window.add(entries)
	h.metrics.window(h.window)
}

// send queues d for s, or drops s when it is too far behind. h.mu is held.
func (h *Hub) send(s *subscriber, d delivery) {
	select {
	case s.ch <- d:
	default:
		h.drop(s, "slow")
	}
}

// drop removes s and ends its stream. h.mu is held.
func (h *Hub) drop(s *subscriber, reason string) {
	if _, ok := h.clients[s]; !ok {
		return
	}
	delete(h.clients, s)
	close(s.gone)
	h.metrics.dropped.WithLabelValues(reason).Inc()
}

// resume is what the window holds for a client resuming after a position.
type resume struct {
	entries []windowEntry // the entries after the position, up to the hub's
	answer  windowAnswer
}

// subscribe adds a client that wants the events filter selects, and returns the hub's position: the client gets every entry
// after it. With after, it also returns what the window holds after that
// position, at the same instant, so that a replay of those entries and
// the live stream after the position meet exactly.
func (h *Hub) subscribe(filter Filter, after *messageapi.FeedPosition) (*subscriber, string, resume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "the server is shutting down")
	case h.last == "":
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "live events are unavailable")
	case len(h.clients) >= h.cfg.MaxClients:
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "this server holds as many event streams as it can; retry, or connect to another")
	}
	var r resume
	if after != nil {
		r.entries, r.answer = h.window.since(*after)
	}
	s := &subscriber{filter: filter, ch: make(chan delivery, h.cfg.Buffer), gone: make(chan struct{})}
	h.clients[s] = struct{}{}
	h.metrics.clients.Set(float64(len(h.clients)))
	return s, h.last, r, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, s)
	h.metrics.clients.Set(float64(len(h.clients)))
}

// Close ends every stream and refuses new ones; the server calls it when
// it shuts down, so that streams do not hold the shutdown up. Clients
// reconnect elsewhere and resume with Last-Event-ID.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.clients {
		h.drop(s, "shutdown")
	}
	h.metrics.clients.Set(0)
}
