package pagecache

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/internal/retry"
)

// Defaults of NearCacheConfig.
const (
	DefaultNearCacheMaxAge  = time.Second
	DefaultNearCacheBytes   = 64 << 20
	DefaultNearCacheEntries = 100_000
)

// NearCacheConfig configures a NearCache.
type NearCacheConfig struct {
	// MaxAge is how long a page is served from memory at most, whatever
	// the announcements say: the backstop of the staleness bound.
	MaxAge time.Duration
	// Bytes caps the bytes of the pages held, about; past it the pages
	// read longest ago go first. A page of ten messages with their inline
	// reactions is about 28 KB: the default holds about 2,000 of them.
	// Default DefaultNearCacheBytes.
	Bytes int
	// Entries caps the pages held, however small. Default
	// DefaultNearCacheEntries.
	Entries int
}

// NearCache keeps, inside one API process, the pages of the latest
// messages it read from the page cache (Cache), and serves them again without a
// round trip to Redis. It is exact in the way the page cache is, within a
// bound:
//
//   - every change of the page cache (a message written through, a view
//     refreshed by the projection, a rebuild, an invalidation) is
//     announced on a pub/sub channel, from the same Lua script that makes
//     it; every process drops its pages of the announced channel on receipt;
//   - the process that writes a message drops its pages of the channel before it
//     answers, so its client reads its own write at once;
//   - while the subscription is down or not yet confirmed, the near cache
//     holds nothing and every read goes to Redis, so an announcement lost
//     with a connection cannot leave a page stale;
//   - no page is served longer than MaxAge after it was read.
//
// A page another process changed is thus served from here for at most the
// pub/sub delivery time, and never beyond MaxAge. Run keeps the
// subscription.
type NearCache struct {
	pc       *Cache
	channel  string
	maxAge   time.Duration
	maxBytes int
	max      int
	metrics  *metrics

	// own, when set, holds readers' own reactions on this subscription.
	own *OwnReactions

	mu   sync.RWMutex
	live bool // the subscription is confirmed
	// gen rises with every drop of the channels of its group (a hash of
	// the channel picks one of them), and all of them with a change of
	// the subscription: a read that began before one of its channel's
	// group is not kept.
	gen      [nearGroups]uint64
	channels map[string]map[nearKey]*nearEntry
	order    list.List // of *nearEntry, the oldest first
	bytes    int
}

// nearGroups is how many generations the channels share.
const nearGroups = 256

// nearKey names a cached range: a channel, an offset or a cursor's id,
// and a count.
type nearKey struct {
	channel string
	offset  int
	before  string
	limit   int
}

type nearEntry struct {
	key   nearKey
	views []messageapi.EncodedView
	read  time.Time // when the read that got them began
	bytes int
	elem  *list.Element
}

// NewNearCache returns a near cache in front of pc.
func NewNearCache(pc *Cache, cfg NearCacheConfig) *NearCache {
	return &NearCache{
		pc: pc, channel: pc.changesChannel(), metrics: pc.metrics,
		maxAge:   cmp.Or(max(cfg.MaxAge, 0), DefaultNearCacheMaxAge),
		maxBytes: cmp.Or(max(cfg.Bytes, 0), DefaultNearCacheBytes),
		max:      cmp.Or(max(cfg.Entries, 0), DefaultNearCacheEntries),
		channels: map[string]map[nearKey]*nearEntry{},
	}
}

// group returns the index of the generation of channel.
func group(channel string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(channel))
	return int(h.Sum32() % nearGroups)
}

// Latest serves r from memory when this process read it from the
// page cache less than MaxAge ago and nothing changed since; else it asks
// the page cache, and keeps the answer when r is one of the cached pages.
func (n *NearCache) Latest(ctx context.Context, r messageapi.MessageRange, load messageapi.LoadViews) ([]messageapi.EncodedView, error) {
	key, ok := n.keyOf(r)
	if !ok {
		return n.pc.Latest(ctx, r, load)
	}
	start := time.Now()
	g := group(key.channel)
	n.mu.RLock()
	e := n.channels[key.channel][key] // an entry is never changed, only replaced
	live, gen := n.live, n.gen[g]
	n.mu.RUnlock()
	if !live {
		n.metrics.near.WithLabelValues("bypass").Inc()
		return n.pc.Latest(ctx, r, load)
	}
	if e != nil && start.Sub(e.read) < n.maxAge {
		n.metrics.near.WithLabelValues("hit").Inc()
		return slices.Clone(e.views), nil // callers may replace views (own reactions)
	}
	n.metrics.near.WithLabelValues("miss").Inc()
	views, err := n.pc.Latest(ctx, r, load)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.live && n.gen[g] == gen {
		n.keep(key, slices.Clone(views), start)
	}
	n.mu.Unlock()
	return views, nil
}

// keep holds views as the page of key, read at read, and makes room for
// it: the pages read longest ago go first. n.mu is held.
func (n *NearCache) keep(key nearKey, views []messageapi.EncodedView, read time.Time) {
	if old := n.channels[key.channel][key]; old != nil {
		n.forget(old)
	}
	e := &nearEntry{key: key, views: views, read: read, bytes: 256}
	for _, v := range views {
		e.bytes += len(v.JSON) + len(v.ID) + 64
	}
	pages := n.channels[key.channel]
	if pages == nil {
		pages = map[nearKey]*nearEntry{}
		n.channels[key.channel] = pages
	}
	pages[key] = e
	e.elem = n.order.PushBack(e)
	n.bytes += e.bytes
	for (n.bytes > n.maxBytes || n.order.Len() > n.max) && n.order.Len() > 0 {
		n.forget(n.order.Front().Value.(*nearEntry))
	}
}

// forget drops the page e. n.mu is held.
func (n *NearCache) forget(e *nearEntry) {
	pages := n.channels[e.key.channel]
	delete(pages, e.key)
	if len(pages) == 0 {
		delete(n.channels, e.key.channel)
	}
	n.order.Remove(e.elem)
	n.bytes -= e.bytes
}

// keyOf returns the key of r when r is a page the page cache may hold: a
// range of the newest messages inside its capacity, or a cursor's page.
func (n *NearCache) keyOf(r messageapi.MessageRange) (nearKey, bool) {
	ch := r.Channel()
	switch {
	case r.BeforeID != "" && r.AfterID == "":
		return nearKey{channel: ch, before: r.BeforeID, limit: r.Limit}, true
	case r.Latest() && r.Offset+r.Limit <= n.pc.capacityOf(ch):
		return nearKey{channel: ch, offset: r.Offset, limit: r.Limit}, true
	}
	return nearKey{}, false
}

// AddMessage writes the message through to the page cache and drops this
// process's pages of its channel, so its author reads it at once from
// here.
func (n *NearCache) AddMessage(ctx context.Context, v messageapi.MessageView) error {
	err := n.pc.AddMessage(ctx, v)
	n.dropPages(v.Channel())
	return err
}

// UpdateMessage writes the changed message to the page cache and drops
// this process's pages of its channel, so its client reads the change at
// once from here; the page cache announces it to the other processes.
func (n *NearCache) UpdateMessage(ctx context.Context, v messageapi.MessageView) error {
	err := n.pc.UpdateMessage(ctx, v)
	n.dropPages(v.Channel())
	return err
}

// dropPages forgets every page of channel. A read of any channel of its
// group that began before is not kept: the generation is shared by the
// channels of a group, which now and then keeps a page from being kept,
// and never keeps a stale one.
func (n *NearCache) dropPages(channel string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen[group(channel)]++
	for _, e := range n.channels[channel] {
		n.forget(e)
	}
}

// announcedChannel returns the channel an announcement of the page cache
// names: the text after its letter and a space, or the default channel.
func announcedChannel(payload string) string {
	if _, ch, ok := strings.Cut(payload, " "); ok && ch != "" {
		return ch
	}
	return messageapi.DefaultChannel
}

// setLive forgets every page, and says whether pages may be kept from
// now on.
func (n *NearCache) setLive(live bool) {
	if n.own != nil {
		// Before live is set: a read that sees the subscription live
		// finds no copy older than its confirmation.
		n.own.reset()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range n.gen {
		n.gen[i]++
	}
	n.live = live
	clear(n.channels)
	n.order.Init()
	n.bytes = 0
	n.metrics.nearLive.Set(map[bool]float64{true: 1}[live])
}

// Live reports whether the subscription is confirmed, so pages are kept.
func (n *NearCache) Live() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.live
}

// Run keeps the subscription to the page cache's announcements until ctx
// is done, dropping the pages on each, and holding none while it is not
// confirmed.
func (n *NearCache) Run(ctx context.Context) {
	wait := retry.Policy(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		if n.follow(ctx) {
			wait.Reset() // it worked for a while: reconnect soon
		}
		n.setLive(false)
		t := time.NewTimer(wait.NextBackOff())
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// follow subscribes and handles announcements until the subscription
// fails; it reports whether it was ever confirmed. A connection that
// stops answering is found by a ping every second.
func (n *NearCache) follow(ctx context.Context) (confirmed bool) {
	channels := []string{n.channel}
	if n.own != nil {
		channels = append(channels, n.own.channel)
	}
	ps := n.pc.c.Redis().Subscribe(ctx, channels...)
	defer ps.Close()
	subscribed := map[string]bool{}
	awaitingPong := false
	for ctx.Err() == nil { // a receive does not end with ctx, only within a second
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		var netErr interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &netErr) && netErr.Timeout() && !awaitingPong && confirmed:
			if err := ps.Ping(ctx); err != nil {
				return confirmed
			}
			awaitingPong = true
			continue
		case err != nil:
			return confirmed
		}
		awaitingPong = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && slices.Contains(channels, m.Channel) && !subscribed[m.Channel] {
				subscribed[m.Channel] = true
				if len(subscribed) == len(channels) {
					confirmed = true
					n.setLive(true)
				}
			}
		case *goredis.Message:
			if n.own != nil && m.Channel == n.own.channel {
				n.own.received(m)
				continue
			}
			n.dropPages(announcedChannel(m.Payload))
			n.metrics.nearDrops.Inc()
		}
	}
	return confirmed
}
