package pagecache

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/redis"
)

// OwnReactionStore is where OwnReactions reads what it does not hold.
type OwnReactionStore interface {
	// OwnReactions returns one user's live reactions on each message.
	OwnReactions(ctx context.Context, messageIDs []string, userID string) (map[string][]messageapi.Reaction, error)
	// MessageReactions calls each with up to limit live reactions of a
	// message (reusing the one it passes) and returns how many there were.
	MessageReactions(ctx context.Context, messageID string, limit int, each func(*messageapi.Reaction)) (int, error)
}

// Defaults of OwnReactionsConfig.
const (
	DefaultOwnReactions = 200_000
	// ownCopies bounds the messages OwnReactions tracks, copied or not.
	ownCopies = 10_000
	// ownLoadTimeout bounds one load of a message's reactions.
	ownLoadTimeout = 5 * time.Second
)

// OwnReactionsConfig configures OwnReactions.
type OwnReactionsConfig struct {
	// MaxReactions bounds the reactions held in memory, all messages
	// together (about 130 bytes each); a message with more than half of
	// them is never copied, and its readers' reactions are read from the
	// store. Default DefaultOwnReactions.
	MaxReactions int
}

// OwnReactions serves each reader's own reactions on the messages of a
// page from the API process's memory. For a message read again and again
// (those of the latest pages), it holds a copy of who reacted how: every
// live reaction of the message, by user, loaded with one read of the
// store. Then a reader who reacted, and one who did not, are both answered
// without a round trip, however many reactions the message has.
//
// It is exact in the way NearCache is, within the same bound:
//
//   - every reaction write, on any process, announces whose reactions on
//     which message changed (Forget): the writing process forgets them
//     before the write is answered, so its client reads its own change at
//     once; the others forget them when the announcement arrives on
//     pub/sub. A forgotten user's reactions on the message are read from
//     the store, then held again;
//   - a load that runs while changes are announced marks their users
//     forgotten in the copy it makes, so it never installs a snapshot
//     older than an announcement;
//   - while the near cache's subscription is down or not yet confirmed,
//     nothing is held and every read goes to the store;
//   - no copy is used longer than the near cache's MaxAge after the load
//     that made it began, which bounds the rare cases where an announcement
//     cannot come (a writer that failed to reach Redis, or died between
//     its commit and its announcement). A copy in use is loaded again
//     after three quarters of it, in the background.
type OwnReactions struct {
	near    *NearCache
	store   OwnReactionStore
	channel string
	sender  string // this process, so that it skips its own announcements
	maxAge  time.Duration
	max     int
	queue   *redis.Queue[ownChange]
	metrics *metrics

	mu     sync.Mutex
	gen    uint64 // rises when everything is forgotten; results of older reads are dropped
	copies map[string]*ownCopy
	lru    *list.List // of *ownCopy, most recently read first
	held   int        // reactions held in all copies
}

// ownChange names a user whose reactions on a message changed.
type ownChange struct{ message, user string }

// ownCopy is what OwnReactions knows of one message.
type ownCopy struct {
	id   string
	elem *list.Element
	// reads counts the reads that found no usable copy since the last
	// load; a message read twice is worth copying.
	reads int
	// tooMany is when a load found more reactions than a copy may hold;
	// the message is not loaded again for a while.
	tooMany time.Time
	// loading is set while a load runs; pending collects the users
	// forgotten meanwhile, which the new copy marks forgotten.
	loading bool
	pending map[string]bool
	// ready, readAt, users and size are the copy: every live reaction of
	// the message by user, as of a load that began at readAt.
	ready  bool
	readAt time.Time
	users  map[string][]ownReaction
	size   int
	// dirty holds the users forgotten since the load, each with the seq
	// of its latest change: their reactions are read from the store, and
	// kept only if no change came during that read.
	dirty map[string]uint64
	seq   uint64
}

// ownReaction is a reaction as a copy holds it, without what the copy's
// keys say (message and user).
type ownReaction struct {
	id               uuid.UUID
	typ              string
	score            int32
	created, updated int64 // Unix milliseconds
}

// NewOwnReactions returns the own reactions of readers, held beside the
// near cache n and on its subscription, read from store on a miss. Run
// must run for its announcements to leave the process.
func NewOwnReactions(n *NearCache, store OwnReactionStore, cfg OwnReactionsConfig) *OwnReactions {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	o := &OwnReactions{
		near: n, store: store, channel: n.pc.c.Key("cache", ":own"), sender: hex.EncodeToString(b),
		maxAge: n.maxAge, max: cmp.Or(max(cfg.MaxReactions, 0), DefaultOwnReactions), metrics: n.metrics,
		copies: map[string]*ownCopy{}, lru: list.New(),
	}
	o.queue = redis.NewQueue(redis.QueueConfig{}, o.announce, func(k int) { o.metrics.ownAnnounced.WithLabelValues("dropped").Add(float64(k)) })
	n.own = o
	return o
}

// OwnReactions returns the user's live reactions on each message, newest
// first: from the copies where they are current, from the store for the
// rest, in one read.
func (o *OwnReactions) OwnReactions(ctx context.Context, messageIDs []string, userID string) (map[string][]messageapi.Reaction, error) {
	if !o.near.Live() {
		o.metrics.own.WithLabelValues("bypass").Add(float64(len(messageIDs)))
		return o.store.OwnReactions(ctx, messageIDs, userID)
	}
	now := time.Now()
	own := make(map[string][]messageapi.Reaction, len(messageIDs))
	var ask []string
	marks := map[string]uint64{} // messages whose copy takes the answer, with the user's seq
	var loads []*ownCopy
	o.mu.Lock()
	gen := o.gen
	for _, id := range messageIDs {
		c := o.track(id)
		usable := c.ready && now.Sub(c.readAt) < o.maxAge
		if usable {
			if seq, forgotten := c.dirty[userID]; forgotten {
				ask, marks[id] = append(ask, id), seq
			} else {
				own[id] = c.reactions(userID)
			}
		} else {
			ask = append(ask, id)
			c.reads++
		}
		if o.shouldLoad(c, usable, now) {
			c.loading, c.pending = true, map[string]bool{}
			loads = append(loads, c)
		}
	}
	o.evict(nil)
	o.mu.Unlock()
	o.metrics.own.WithLabelValues("hit").Add(float64(len(messageIDs) - len(ask)))
	for _, c := range loads {
		go o.load(c, gen)
	}
	if len(ask) == 0 {
		return own, nil
	}
	o.metrics.own.WithLabelValues("store").Add(float64(len(ask)))
	read, err := o.store.OwnReactions(ctx, ask, userID)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	for id, seq := range marks {
		if c := o.copies[id]; o.gen == gen && c != nil && c.ready && c.dirty[userID] == seq {
			delete(c.dirty, userID)
			o.hold(c, userID, read[id])
		}
	}
	o.mu.Unlock()
	for _, id := range ask {
		own[id] = read[id]
		if own[id] == nil {
			own[id] = []messageapi.Reaction{}
		}
	}
	return own, nil
}

// shouldLoad reports whether to load c now: a message read a second time
// without a usable copy, or one whose copy has lived three quarters of its
// time while still read (the load, tens of milliseconds for a message of
// tens of thousands of reactions, ends before the copy expires), unless a load runs or the message was too big lately.
// o.mu is held.
func (o *OwnReactions) shouldLoad(c *ownCopy, usable bool, now time.Time) bool {
	switch {
	case c.loading, !c.tooMany.IsZero() && now.Sub(c.tooMany) < 10*o.maxAge:
		return false
	case usable:
		return now.Sub(c.readAt) >= o.maxAge*3/4
	}
	return c.reads >= 2
}

// track returns what o knows of the message, creating it, and marks it
// read now. o.mu is held.
func (o *OwnReactions) track(id string) *ownCopy {
	if c := o.copies[id]; c != nil {
		o.lru.MoveToFront(c.elem)
		return c
	}
	c := &ownCopy{id: id}
	c.elem = o.lru.PushFront(c)
	o.copies[id] = c
	return c
}

// reactions returns the user's reactions as the copy holds them. o.mu is
// held.
func (c *ownCopy) reactions(user string) []messageapi.Reaction {
	held := c.users[user]
	out := make([]messageapi.Reaction, len(held))
	for i, r := range held {
		out[i] = messageapi.Reaction{
			ID: r.id.String(), MessageID: c.id, UserID: user, Type: r.typ, Score: int(r.score),
			CreatedAt: messageapi.NewTime(time.UnixMilli(r.created)), UpdatedAt: messageapi.NewTime(time.UnixMilli(r.updated)),
		}
	}
	return out
}

// hold sets a user's reactions in a ready copy. o.mu is held.
func (o *OwnReactions) hold(c *ownCopy, user string, rs []messageapi.Reaction) {
	o.held -= len(c.users[user])
	c.size -= len(c.users[user])
	delete(c.users, user)
	if len(rs) == 0 {
		return
	}
	held := make([]ownReaction, 0, len(rs))
	for _, r := range rs {
		if or, ok := compact(r, nil); ok {
			held = append(held, or)
		}
	}
	c.users[user] = held
	c.size += len(held)
	o.held += len(held)
}

// compact returns r as a copy holds it, with its type interned in types
// when given.
func compact(r messageapi.Reaction, types map[string]string) (ownReaction, bool) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return ownReaction{}, false
	}
	typ := r.Type
	if types != nil {
		if t, ok := types[typ]; ok {
			typ = t
		} else {
			types[typ] = typ
		}
	}
	return ownReaction{id: id, typ: typ, score: int32(r.Score), created: r.CreatedAt.UnixMilli(), updated: r.UpdatedAt.UnixMilli()}, true
}

// load reads every live reaction of c's message and makes the copy of
// them, unless everything was forgotten meanwhile (gen) or the message
// has more than a copy may hold.
func (o *OwnReactions) load(c *ownCopy, gen uint64) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), ownLoadTimeout)
	defer cancel()
	limit := o.max / 2
	users := make(map[string][]ownReaction)
	types := map[string]string{}
	seen := 0
	n, err := o.store.MessageReactions(ctx, c.id, limit+1, func(r *messageapi.Reaction) {
		if seen++; seen > limit {
			return // too many to copy: the load is dropped
		}
		if or, ok := compact(*r, types); ok {
			users[r.UserID] = append(users[r.UserID], or)
		}
	})
	if n > limit {
		users = nil
	}
	for _, held := range users {
		slices.SortFunc(held, func(a, b ownReaction) int {
			return cmp.Or(cmp.Compare(b.created, a.created), bytes.Compare(b.id[:], a.id[:]))
		})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	pending := c.pending
	c.loading, c.pending = false, nil
	if o.gen != gen || o.copies[c.id] != c {
		return // forgotten meanwhile
	}
	switch {
	case err != nil:
		o.metrics.ownLoads.WithLabelValues("error").Inc()
		c.reads = 0
		return
	case pending[everyUser]:
		return // the message was deleted meanwhile: the load may predate it
	case n > limit:
		o.metrics.ownLoads.WithLabelValues("too_many").Inc()
		o.drop(c)
		c.tooMany = began
		return
	}
	o.metrics.ownLoads.WithLabelValues("ok").Inc()
	o.held += n - c.size
	c.users, c.size, c.ready, c.readAt, c.reads = users, n, true, began, 0
	c.dirty = make(map[string]uint64, len(pending))
	for user := range pending {
		c.seq++
		c.dirty[user] = c.seq
	}
	o.evict(c)
}

// drop empties c's copy. o.mu is held.
func (o *OwnReactions) drop(c *ownCopy) {
	o.held -= c.size
	c.users, c.dirty, c.size, c.ready = nil, nil, 0, false
}

// evict forgets the least recently read messages while more reactions or
// messages are held than allowed, sparing keep. o.mu is held.
func (o *OwnReactions) evict(keep *ownCopy) {
	for e := o.lru.Back(); e != nil && (o.held > o.max || len(o.copies) > ownCopies); {
		c := e.Value.(*ownCopy)
		e = e.Prev()
		if c == keep {
			continue
		}
		o.drop(c)
		o.lru.Remove(c.elem)
		delete(o.copies, c.id)
	}
	o.metrics.ownHeld.Set(float64(o.held))
}

// Forget tells o that the user's reactions on the message changed, or
// may have (a write whose outcome is unknown): it forgets them at once
// and announces it to the other processes. Call it after the write
// returns, whatever it returned, and before answering its client.
func (o *OwnReactions) Forget(_ context.Context, messageID, userID string) {
	o.forget(messageID, userID)
	_ = o.queue.Put(ownChange{message: messageID, user: userID})
}

// ForgetMessage tells o that every reaction on the message changed (it
// was deleted): it drops the message's copy at once and announces it to
// the other processes.
func (o *OwnReactions) ForgetMessage(_ context.Context, messageID string) {
	o.forget(messageID, everyUser)
	_ = o.queue.Put(ownChange{message: messageID, user: everyUser})
}

// everyUser stands for all users of a message in forget and in
// announcements; no user id holds a "*".
const everyUser = "*"

// forget marks the user's reactions on the message forgotten, or, for
// everyUser, drops the message's copy. o.mu is not held.
func (o *OwnReactions) forget(messageID, userID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.copies[messageID]
	if c == nil {
		return
	}
	if c.loading {
		c.pending[userID] = true
	}
	switch {
	case userID == everyUser:
		o.drop(c)
		o.metrics.ownHeld.Set(float64(o.held))
	case c.ready:
		c.seq++
		c.dirty[userID] = c.seq
	}
}

// reset forgets everything, when the subscription starts or stops.
func (o *OwnReactions) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen++
	clear(o.copies)
	o.lru.Init()
	o.held = 0
	o.metrics.ownHeld.Set(0)
}

// An announcement is the sender's id, then one "message user" line per
// change. Neither a message id nor a user id holds a space or a newline.
func (o *OwnReactions) announce(ctx context.Context, changes []ownChange) error {
	var b strings.Builder
	b.WriteString(o.sender)
	for _, ch := range changes {
		b.WriteString("\n" + ch.message + " " + ch.user)
	}
	err := o.near.pc.c.Do(func() error { return o.near.pc.c.Redis().Publish(ctx, o.channel, b.String()).Err() })
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.metrics.ownAnnounced.WithLabelValues(result).Add(float64(len(changes)))
	return err
}

// received handles an announcement from the subscription.
func (o *OwnReactions) received(m *goredis.Message) {
	sender, rest, _ := strings.Cut(m.Payload, "\n")
	if sender == o.sender {
		return // forgotten already, before the write was answered
	}
	for line := range strings.SplitSeq(rest, "\n") {
		if message, user, ok := strings.Cut(line, " "); ok {
			o.forget(message, user)
		}
	}
}

// Run publishes the announcements of Forget until ctx is done, then
// what is still queued, for at most drain.
func (o *OwnReactions) Run(ctx context.Context, drain time.Duration) { o.queue.Run(ctx, drain) }
