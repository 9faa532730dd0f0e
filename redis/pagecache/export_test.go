package pagecache

import (
	"context"

	"messageapi"
	"messageapi/redis"
)

// The steps of the rebuild protocol, for tests that interleave them with
// writes the way concurrent processes would.

// They work on the default channel's index.

func (pc *Cache) BeginFill(ctx context.Context) (string, error) {
	return pc.beginFill(ctx, pc.def, pc.def.capacity)
}

func (pc *Cache) CompleteFill(ctx context.Context, token string, views []messageapi.EncodedView) (bool, error) {
	return pc.completeFill(ctx, pc.def, token, pc.def.capacity, views)
}

func (pc *Cache) Page(ctx context.Context, offset, count int) ([]messageapi.EncodedView, bool, error) {
	return pc.ChannelPage(ctx, messageapi.DefaultChannel, offset, count)
}

// ChannelPage reads a page of channel's index, as a read of this process
// would, without rebuilding it on a miss.
func (pc *Cache) ChannelPage(ctx context.Context, channel string, offset, count int) ([]messageapi.EncodedView, bool, error) {
	views, hit, _, err := pc.page(ctx, pc.of(channel), offset, count)
	return views, hit, err
}

func (pc *Cache) PageBefore(ctx context.Context, beforeID string, count int) ([]messageapi.EncodedView, bool, error) {
	views, hit, _, err := pc.pageBefore(ctx, pc.def, beforeID, count)
	return views, hit, err
}

func (pc *Cache) Capacity() int { return pc.def.capacity }

func (pc *Cache) EntryKey(id string) string { return pc.def.entryKey(id) }

func (pc *Cache) Client() *redis.Client { return pc.c }

// Copied reports whether o holds a usable copy of the message.
func (o *OwnReactions) Copied(messageID string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.copies[messageID]
	return c != nil && c.ready
}

// Held is how many reactions o holds.
func (o *OwnReactions) Held() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held
}

// NearHeld returns how many pages n holds, and their bytes as counted
// against NearCacheConfig.Bytes.
func (n *NearCache) NearHeld() (pages, bytes int) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.order.Len(), n.bytes
}

// Holds reports whether n holds the page of channel at offset 0 and limit.
func (n *NearCache) Holds(channel string, limit int) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.channels[channel][nearKey{channel: channel, limit: limit}] != nil
}
