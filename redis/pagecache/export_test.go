package pagecache

import (
	"context"

	"messageapi"
	"messageapi/redis"
)

// The steps of the rebuild protocol, for tests that interleave them with
// writes the way concurrent processes would.

func (pc *Cache) BeginFill(ctx context.Context) (string, error) { return pc.beginFill(ctx) }

func (pc *Cache) CompleteFill(ctx context.Context, token string, views []messageapi.EncodedView) (bool, error) {
	return pc.completeFill(ctx, token, views)
}

func (pc *Cache) Page(ctx context.Context, offset, count int) ([]messageapi.EncodedView, bool, error) {
	return pc.page(ctx, offset, count)
}

func (pc *Cache) PageBefore(ctx context.Context, beforeID string, count int) ([]messageapi.EncodedView, bool, error) {
	return pc.pageBefore(ctx, beforeID, count)
}

func (pc *Cache) Capacity() int { return pc.capacity }

func (pc *Cache) EntryKey(id string) string { return pc.entryKey(id) }

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
