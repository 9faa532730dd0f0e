package pagecache

import (
	"cmp"
	"context"
	"errors"
	"maps"
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
	DefaultNearCacheEntries = 256
)

// NearCacheConfig configures a NearCache.
type NearCacheConfig struct {
	// MaxAge is how long a page is served from memory at most, whatever
	// the announcements say: the backstop of the staleness bound.
	MaxAge time.Duration
	// Entries caps the pages held; past it the near cache starts afresh.
	// Cursor pages make many distinct keys, and a page of ten messages
	// with their inline reactions is about 28 KB: the default keeps the
	// near cache under about 7 MB.
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
	pc      *Cache
	channel string
	maxAge  time.Duration
	max     int
	metrics *metrics

	// own, when set, holds readers' own reactions on this subscription.
	own *OwnReactions

	mu      sync.RWMutex
	live    bool   // the subscription is confirmed
	gen     uint64 // rises with every drop; a read that began before one is not kept
	entries map[nearKey]nearEntry
}

// nearKey names a cached range: a channel, an offset or a cursor's id,
// and a count.
type nearKey struct {
	channel string
	offset  int
	before  string
	limit   int
}

type nearEntry struct {
	views []messageapi.EncodedView
	read  time.Time // when the read that got them began
}

// NewNearCache returns a near cache in front of pc.
func NewNearCache(pc *Cache, cfg NearCacheConfig) *NearCache {
	return &NearCache{
		pc: pc, channel: pc.changesChannel(), metrics: pc.metrics,
		maxAge:  cmp.Or(max(cfg.MaxAge, 0), DefaultNearCacheMaxAge),
		max:     cmp.Or(max(cfg.Entries, 0), DefaultNearCacheEntries),
		entries: map[nearKey]nearEntry{},
	}
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
	n.mu.RLock()
	e, found := n.entries[key]
	live, gen := n.live, n.gen
	n.mu.RUnlock()
	if !live {
		n.metrics.near.WithLabelValues("bypass").Inc()
		return n.pc.Latest(ctx, r, load)
	}
	if found && start.Sub(e.read) < n.maxAge {
		n.metrics.near.WithLabelValues("hit").Inc()
		return slices.Clone(e.views), nil // callers may replace views (own reactions)
	}
	n.metrics.near.WithLabelValues("miss").Inc()
	views, err := n.pc.Latest(ctx, r, load)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.live && n.gen == gen {
		if len(n.entries) >= n.max {
			clear(n.entries)
		}
		n.entries[key] = nearEntry{views: slices.Clone(views), read: start}
	}
	n.mu.Unlock()
	return views, nil
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

// dropPages forgets every page of channel. A read of any channel that
// began before is not kept: the generation is one for all channels, which
// now and then keeps a page from being kept, and never keeps a stale one.
func (n *NearCache) dropPages(channel string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	maps.DeleteFunc(n.entries, func(k nearKey, _ nearEntry) bool { return k.channel == channel })
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
	n.gen++
	n.live = live
	clear(n.entries)
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
