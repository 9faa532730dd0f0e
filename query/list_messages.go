package query

import (
	"cmp"
	"context"
	"fmt"

	"golang.org/x/sync/semaphore"

	"messageapi"
)

// MessageReader reads messages with their views from the read model.
type MessageReader interface {
	ListMessages(ctx context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error)
}

// PageCache serves the latest messages. It owns how it stays exact (see
// the redis package): given a range of the newest messages, it answers
// from what it holds when it can, and otherwise calls load, which reads
// PostgreSQL, rebuilding itself from load when that pays.
type PageCache interface {
	Latest(ctx context.Context, r messageapi.MessageRange, load messageapi.LoadViews) ([]messageapi.EncodedView, error)
}

// ListMessages asks for a page of messages, newest first. Page and Cursor
// exclude each other; without either it is the first page. Nil fields take
// their defaults.
type ListMessages struct {
	Limit  *int
	Page   *int
	Cursor *string
}

// MessagePage is a page of messages, already encoded: pages inside the
// cached range are served as the bytes the cache holds. NextCursor is set
// only when more messages follow.
type MessagePage struct {
	Messages   []messageapi.EncodedView
	NextCursor string
}

// JSON returns the page as the API writes it:
// {"messages": [...], "next_cursor": "..."}, the cursor only when set. It
// splices the encoded views rather than re-encoding them: they are JSON
// this service wrote, and a cursor is base64url, which needs no escaping.
func (p MessagePage) JSON() []byte {
	n := 32 + len(p.NextCursor)
	for _, v := range p.Messages {
		n += len(v.JSON) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"messages":[`...)
	for i, v := range p.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v.JSON...)
	}
	b = append(b, ']')
	if p.NextCursor != "" {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, p.NextCursor...)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// ListMessagesConfig sets the limits of ListMessagesHandler.
type ListMessagesConfig struct {
	// HeavyReads is how many pages it reads from the store at once; more
	// wait their turn, so that deep pages (a join of up to 101 views each)
	// cannot take every connection and every core from other reads.
	// 0 means DefaultHeavyReads.
	HeavyReads int
}

// DefaultHeavyReads is ListMessagesConfig.HeavyReads when none is given.
const DefaultHeavyReads = 4

// ListMessagesHandler handles ListMessages.
type ListMessagesHandler struct {
	store MessageReader
	cache PageCache
	heavy *semaphore.Weighted
}

// NewListMessagesHandler returns a ListMessagesHandler.
func NewListMessagesHandler(store MessageReader, cache PageCache, cfg ListMessagesConfig) *ListMessagesHandler {
	if store == nil || cache == nil {
		panic("query: NewListMessagesHandler needs a store and a cache")
	}
	n := cmp.Or(max(cfg.HeavyReads, 0), DefaultHeavyReads)
	return &ListMessagesHandler{store: store, cache: cache, heavy: semaphore.NewWeighted(int64(n))}
}

// validate checks the request and returns the range it asks for.
func (q ListMessages) validate() (messageapi.MessageRange, error) {
	f := messageapi.FieldErrors{}
	r := messageapi.MessageRange{Limit: messageapi.DefaultPageSize}
	if q.Limit != nil {
		r.Limit = *q.Limit
		f.Check(r.Limit >= 1 && r.Limit <= messageapi.MaxPageSize, "limit", messageapi.LimitRule)
	}
	switch {
	case q.Page != nil && q.Cursor != nil:
		f.Add("page", "cannot be combined with cursor")
	case q.Page != nil:
		if f.Check(*q.Page >= 1, "page", messageapi.PageRule) && !f.Has("limit") &&
			f.Check(*q.Page-1 <= messageapi.MaxPageOffset/r.Limit, "page", messageapi.PageDepthRule) {
			r.Offset = (*q.Page - 1) * r.Limit
		}
	case q.Cursor != nil:
		before, ok := decodeMessageCursor(*q.Cursor)
		f.Check(ok, "cursor", messageapi.CursorRule)
		r.BeforeID = before
	}
	return r, f.Err()
}

// Handle returns the page: the cache's, or else the store's. It asks for
// one message more than the limit to know whether a next page exists,
// without counting.
func (h *ListMessagesHandler) Handle(ctx context.Context, q ListMessages) (MessagePage, error) {
	r, err := q.validate()
	if err != nil {
		return MessagePage{}, err
	}
	limit := r.Limit
	r.Limit++
	views, err := h.cache.Latest(ctx, r, h.load)
	if err != nil {
		return MessagePage{}, err
	}
	p := MessagePage{Messages: views}
	if len(views) > limit {
		p.Messages = views[:limit]
		p.NextCursor = encodeMessageCursor(views[limit-1].ID)
	}
	return p, nil
}

// load reads views from PostgreSQL, at most HeavyReads at once, and
// encodes them. A read that cannot start before its deadline is
// unavailable.
func (h *ListMessagesHandler) load(ctx context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
	if err := h.heavy.Acquire(ctx, 1); err != nil {
		return nil, messageapi.Unavailable("database", fmt.Errorf("wait for a page read: %w", err))
	}
	defer h.heavy.Release(1)
	views, err := h.store.ListMessages(ctx, r)
	if err != nil {
		return nil, err
	}
	encoded := make([]messageapi.EncodedView, len(views))
	for i, v := range views {
		if encoded[i], err = v.Encode(); err != nil {
			return nil, err
		}
	}
	return encoded, nil
}
