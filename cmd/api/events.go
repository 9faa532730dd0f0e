package main

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
	"messageapi/internal/retry"
	"messageapi/redis"
)

// eventFeed is the live feed as the hub reads it; redis.Feed implements it.
type eventFeed interface {
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

// Bounds of GET /events.
const (
	maxEventFilters  = 100
	minEventDuration = time.Second
	maxEventDuration = time.Hour
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

// hubConfig configures the live-event hub.
type hubConfig struct {
	// maxClients caps the streams one process holds; more get 503.
	maxClients int
	// buffer is how many events a client may fall behind before it is
	// dropped; it resumes losslessly with Last-Event-ID.
	buffer int
	// heartbeat is how often an idle stream gets a comment, so proxies and
	// clients see it alive.
	heartbeat time.Duration
	// writeTimeout bounds one write to a client.
	writeTimeout time.Duration
	// block is how long one read of the feed waits. Keep it short: a
	// blocked read does not end when its context does, and shutdown
	// waits for it.
	block time.Duration
	// windowEvents and windowBytes bound the window of the feed held in
	// memory, from which resumes are served.
	windowEvents, windowBytes int
	// deepResumes caps the resumes from before the window that read the
	// feed from Redis at once.
	deepResumes int
}

// hub reads the live feed once per process and fans each entry out to the
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
type hub struct {
	feed     eventFeed
	deepFeed eventFeed
	deep     bulkhead
	log      *slog.Logger
	metrics  *sseMetrics
	cfg      hubConfig
	warm     chan struct{} // closed once the hub knows its position

	mu      sync.Mutex
	clients map[*subscriber]struct{}
	last    string // the id of the last entry fanned out; "" until known
	window  *feedWindow
	closed  bool
}

// subscriber is one SSE client of the hub.
type subscriber struct {
	filter map[string]bool // message ids; nil for all
	ch     chan delivery
	gone   chan struct{} // closed when the hub drops the client
}

// delivery is one entry for a client, or a reset to the position entry.ID.
type delivery struct {
	entry messageapi.FeedEntry
	reset bool
}

func newHub(feed eventFeed, log *slog.Logger, m *sseMetrics, cfg hubConfig) *hub {
	if cfg.block <= 0 {
		cfg.block = time.Second
	}
	if cfg.writeTimeout <= 0 {
		cfg.writeTimeout = 5 * time.Second
	}
	return &hub{feed: feed, deepFeed: feed, deep: newBulkhead(cfg.deepResumes), log: log, metrics: m, cfg: cfg,
		warm: make(chan struct{}), clients: map[*subscriber]struct{}{}, window: newFeedWindow(cfg.windowEvents, cfg.windowBytes)}
}

// resumeFrom makes deep resumes read feed instead of the hub's own, for
// example one on a Redis client with a pool and breaker of its own.
func (h *hub) resumeFrom(feed eventFeed) { h.deepFeed = feed }

// run reads the feed and fans it out until ctx is done.
func (h *hub) run(ctx context.Context) {
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
		pos := h.position()
		if pos == "" {
			entries, from, err := h.deepFeed.Tail(ctx, h.window.maxEvents, h.window.maxBytes)
			if err != nil {
				fail("start", err)
				continue
			}
			h.restart(entries, from, false)
			continue
		}
		entries, err := h.feed.Read(ctx, pos, replayPage, h.cfg.block)
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

func (h *hub) position() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// positionIsEntry reports whether the hub's position is the id of an
// entry it read, which the feed must still hold. Until the hub has read
// one, its position may be a bound the feed never held as an entry (the
// last id of a feed trimmed empty), and nothing lies between that bound
// and what the hub reads next.
func (h *hub) positionIsEntry() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.window.entries) > 0
}

// restart starts the window afresh with the newest entries of the feed,
// which it holds everything of after from, and moves the hub's position
// to the last of them; with reset it tells every client. It returns the
// new position.
func (h *hub) restart(entries []messageapi.FeedEntry, from string, reset bool) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.window.reset(mustStreamID(from))
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
func (h *hub) awaitWarm(ctx context.Context, wait time.Duration) error {
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
func (h *hub) broadcast(entries []messageapi.FeedEntry) {
	if len(entries) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		for s := range h.clients {
			if s.filter == nil || s.filter[e.MessageID] {
				h.send(s, delivery{entry: e})
			}
		}
	}
	h.last = entries[len(entries)-1].ID
	h.window.add(entries)
	h.metrics.window(h.window)
}

// send queues d for s, or drops s when it is too far behind. h.mu is held.
func (h *hub) send(s *subscriber, d delivery) {
	select {
	case s.ch <- d:
	default:
		h.drop(s, "slow")
	}
}

// drop removes s and ends its stream. h.mu is held.
func (h *hub) drop(s *subscriber, reason string) {
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

// subscribe adds a client that wants the events of the messages in filter
// (nil: all), and returns the hub's position: the client gets every entry
// after it. With after, it also returns what the window holds after that
// position, at the same instant, so that a replay of those entries and
// the live stream after the position meet exactly.
func (h *hub) subscribe(filter map[string]bool, after *redis.StreamID) (*subscriber, string, resume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "the server is shutting down")
	case h.last == "":
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "live events are unavailable")
	case len(h.clients) >= h.cfg.maxClients:
		return nil, "", resume{}, messageapi.Errorf(messageapi.EUNAVAILABLE, "this server holds as many event streams as it can; retry, or connect to another")
	}
	var r resume
	if after != nil {
		r.entries, r.answer = h.window.since(*after)
	}
	s := &subscriber{filter: filter, ch: make(chan delivery, h.cfg.buffer), gone: make(chan struct{})}
	h.clients[s] = struct{}{}
	h.metrics.clients.Set(float64(len(h.clients)))
	return s, h.last, r, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, s)
	h.metrics.clients.Set(float64(len(h.clients)))
}

// close ends every stream and refuses new ones; the server calls it when
// it shuts down, so that streams do not hold the shutdown up. Clients
// reconnect elsewhere and resume with Last-Event-ID.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.clients {
		h.drop(s, "shutdown")
	}
	h.metrics.clients.Set(0)
}

// eventsRequest is a parsed GET /events.
type eventsRequest struct {
	filter   map[string]bool
	lastID   string
	duration time.Duration
}

// parseEventsRequest reads GET /events: message_id (repeatable), the
// position to resume after (the Last-Event-ID header, or last_event_id
// for clients that cannot set it), and duration.
func parseEventsRequest(r *http.Request) (eventsRequest, error) {
	params, err := queryParams(r, "message_id", "last_event_id", "duration", "access_token")
	if err != nil {
		return eventsRequest{}, err
	}
	var req eventsRequest
	if ids := params.list("message_id"); len(ids) > 0 {
		req.filter = make(map[string]bool, len(ids))
		if len(ids) > maxEventFilters {
			params.fields["message_id"] = "may be given at most " + strconv.Itoa(maxEventFilters) + " times"
		}
		for _, id := range ids {
			u, err := uuid.Parse(id)
			if err != nil || !messageapi.ValidUUIDBraces(id) {
				params.fields["message_id"] = messageapi.UUIDRule
				break
			}
			req.filter[u.String()] = true
		}
	}
	if s := params.str("last_event_id"); s != nil {
		req.lastID = *s
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		req.lastID = h // a reconnecting EventSource's position is newer
	}
	if req.lastID != "" {
		if _, ok := redis.ParseStreamID(req.lastID); !ok || len(req.lastID) > 41 {
			params.fields["last_event_id"] = "must be the id of an event this stream sent"
		}
	}
	if s := params.str("duration"); s != nil {
		d, err := time.ParseDuration(*s)
		if err != nil || d < minEventDuration || d > maxEventDuration {
			params.fields["duration"] = "must be a duration from " + minEventDuration.String() + " to " + maxEventDuration.String() + ", like 30s"
		}
		req.duration = d
	}
	return req, params.err()
}

// handleEvents streams live events as Server-Sent Events. Each event's id
// is its position in the feed; a client that reconnects with it as
// Last-Event-ID gets what it missed, or a reset event when the feed no
// longer holds it. A ready event marks the end of the replay.
//
// A resume inside the hub's window is served from memory. One from before
// it reads the feed, and waits its turn for that (deepResumeWait at most).
// One that does not get a turn gets a stream that only says when to come
// back (retry:) and ends: a browser's EventSource then reconnects by
// itself with the same Last-Event-ID, which it would not do after a 503.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	req, err := parseEventsRequest(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.hub.awaitWarm(ctx, warmWait); err != nil {
		writeError(w, r, err)
		return
	}
	var after *redis.StreamID
	if req.lastID != "" {
		id := mustStreamID(req.lastID)
		after = &id
	}
	sub, pos, res, err := s.hub.subscribe(req.filter, after)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer s.hub.unsubscribe(sub)
	deep := after != nil && res.answer == outside && r.Method != http.MethodHead
	turn := false // holds a place among the deep resumes
	if deep {
		var waited bool
		turn, waited = s.hub.deep.acquire(ctx, deepResumeWait)
		s.hub.metrics.deepResume(turn, waited)
	}
	release := func() {
		if turn {
			turn = false
			s.hub.deep.release()
		}
	}
	defer release()
	if req.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.duration)
		defer cancel()
	}
	out := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.hub.cfg.writeTimeout, metrics: s.hub.metrics}
	// The server's read deadline would end the stream; the client sends
	// nothing more, and its disconnect still cancels ctx.
	_ = out.rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// Clients that lose their streams together (a restart, a network
	// blip) come back spread over a few seconds, not in step.
	out.buf.WriteString("retry: " + strconv.Itoa(1000+rand.IntN(4000)) + "\n\n")
	if deep && !turn { // come back later, from the same position
		_ = out.flush()
		return
	}

	cursor := pos
	switch {
	case after == nil:
	case deep:
		s.hub.metrics.resumes.WithLabelValues("feed").Inc()
		var ok bool
		cursor, ok = s.replay(ctx, out, req, pos, sub.gone)
		release() // the live stream needs no place
		if !ok {
			return
		}
		if a, _ := redis.ParseStreamID(cursor); !a.After(mustStreamID(pos)) {
			cursor = pos
		}
	case res.answer == notInFeed:
		s.hub.metrics.resumes.WithLabelValues("window").Inc()
		s.hub.metrics.resets.Inc()
		out.event("reset", pos, []byte("{}"), time.Time{})
	default:
		s.hub.metrics.resumes.WithLabelValues("window").Inc()
		if !s.replayWindow(out, req.filter, res.entries, sub.gone) {
			return
		}
	}
	out.event("ready", cursor, []byte("{}"), time.Time{})
	if out.flush() != nil {
		return
	}
	last := mustStreamID(cursor)
	heartbeat := time.NewTicker(s.hub.cfg.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.gone:
			return
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
			return
		}
	}
}

// replayWindow sends the client the entries of the window it missed, in
// chunks of replayChunk bytes. It reports false when the stream must end.
func (s *server) replayWindow(out *sseWriter, filter map[string]bool, entries []windowEntry, gone <-chan struct{}) bool {
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

// replay sends what the client missed after req.lastID, up to pos, where
// the live stream takes over, reading it from the feed a page at a time.
// It returns the last position sent, or false when the stream must end
// (the feed is unavailable, or the hub dropped the client; it retries).
func (s *server) replay(ctx context.Context, out *sseWriter, req eventsRequest, pos string, gone <-chan struct{}) (string, bool) {
	cursor, end := req.lastID, mustStreamID(pos)
	for {
		select {
		case <-gone: // dropped meanwhile (shutdown, or too far behind)
			return "", false
		default:
		}
		entries, kept, err := s.hub.deepFeed.Since(ctx, cursor, replayPage)
		if err != nil {
			requestLogger(ctx).WarnContext(ctx, "live events: resume failed", "err", err)
			return "", false
		}
		if !kept {
			s.hub.metrics.resets.Inc()
			out.event("reset", pos, []byte("{}"), time.Time{})
			return pos, true
		}
		sent := 0
		for _, e := range entries {
			if mustStreamID(e.ID).After(end) {
				break // the live stream brings it
			}
			if out.replayed(req.filter, e) != nil {
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

func mustStreamID(s string) redis.StreamID {
	id, _ := redis.ParseStreamID(s)
	return id
}

// sseWriter writes events to one client, buffering them until flush.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	metrics *sseMetrics
	buf     bytes.Buffer
	events  int         // buffered events
	times   []time.Time // commit times of the buffered live events
}

// deliver writes d unless the client has it already (its id is not after
// last, when the client resumed ahead of this process's feed), and
// returns the new last.
func (o *sseWriter) deliver(d delivery, last redis.StreamID) redis.StreamID {
	id := mustStreamID(d.entry.ID)
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

// replayed buffers an entry of a replay, when filter (nil: all) wants it,
// and writes the buffer once it holds replayChunk bytes, so that a client
// that does not read holds little.
func (o *sseWriter) replayed(filter map[string]bool, e messageapi.FeedEntry) error {
	if filter != nil && !filter[e.MessageID] {
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

// sseMetrics are the live events' metrics.
type sseMetrics struct {
	clients      prometheus.Gauge
	events       prometheus.Counter
	dropped      *prometheus.CounterVec
	resets       prometheus.Counter
	readErrors   prometheus.Counter
	lag          prometheus.Histogram
	resumes      *prometheus.CounterVec
	deepResumes  *prometheus.CounterVec
	windowEvents prometheus.Gauge
	windowBytes  prometheus.Gauge
	windowFrom   prometheus.Gauge
}

// window records the window's size and start. The hub's lock is held.
func (m *sseMetrics) window(w *feedWindow) {
	m.windowEvents.Set(float64(len(w.entries)))
	m.windowBytes.Set(float64(w.bytes))
	m.windowFrom.Set(float64(w.from.Ms) / 1000)
}

// deepResume records how a deep resume got its turn, or did not.
func (m *sseMetrics) deepResume(ok, waited bool) {
	outcome := "started"
	switch {
	case !ok:
		outcome = "refused"
	case waited:
		outcome = "waited"
	}
	m.deepResumes.WithLabelValues(outcome).Inc()
}

func newSSEMetrics(reg prometheus.Registerer) *sseMetrics {
	m := &sseMetrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_sse_clients",
			Help: "Clients streaming live events from this process.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_events_total",
			Help: "Events written to clients, live or replayed, with the stream's own ready and reset events.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_sse_dropped_total",
			Help: "Event streams the server ended: slow (the client fell a buffer behind), write (a write failed or timed out), shutdown.",
		}, []string{"reason"}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_resets_total",
			Help: "Reset events sent: the feed no longer held a client's position.",
		}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messageapi_sse_feed_errors_total",
			Help: "Failed reads of the live feed.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_sse_delivery_lag_seconds",
			Help:    "Time from an event's commit to its write to a client.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.resumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_sse_resumes_total",
		Help: "Streams that resumed after a Last-Event-ID, by where their replay came from: window (the process's memory), feed (Redis).",
	}, []string{"from"})
	m.deepResumes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messageapi_sse_deep_resumes_total",
		Help: "Resumes from before the window, by how they got their turn: started (at once), waited, refused (told to retry).",
	}, []string{"outcome"})
	m.windowEvents = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_events",
		Help: "Events of the live feed held in the process's window.",
	})
	m.windowBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_bytes",
		Help: "Approximate bytes the window holds.",
	})
	m.windowFrom = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "messageapi_sse_window_start_seconds",
		Help: "Time (Unix seconds) of the feed position the window starts after: a resume from before it reads Redis.",
	})
	reg.MustRegister(m.clients, m.events, m.dropped, m.resets, m.readErrors, m.lag,
		m.resumes, m.deepResumes, m.windowEvents, m.windowBytes, m.windowFrom)
	return m
}

// queryToken lets a client that cannot set headers (a browser's
// EventSource) give its token as access_token. A token in the header
// wins; the access log records paths without their query.
func queryToken(v *verifier) func(http.Handler) http.Handler {
	if v == nil {
		return passThrough
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := r.URL.Query().Get("access_token")
			if token == "" || len(r.Header.Values("Authorization")) > 0 {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, verified(r, v, []string{"Bearer " + strings.TrimSpace(token)}))
		})
	}
}
