package query

import (
	"context"
	"fmt"

	"golang.org/x/sync/singleflight"

	"messageapi"
)

// MessageReader reads messages with their views from the read model.
type MessageReader interface {
	ListMessages(ctx context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error)
}

// PageCache holds the latest messages with their views. See the redis
// package for how it stays exact.
type PageCache interface {
	// Capacity is how many of the newest messages it holds.
	Capacity() int
	// Page and PageBefore return up to count views; hit is false when the
	// cache cannot answer exactly.
	Page(ctx context.Context, offset, count int) (views []messageapi.EncodedView, hit bool, err error)
	PageBefore(ctx context.Context, beforeID string, count int) (views []messageapi.EncodedView, hit bool, err error)
	// BeginFill and CompleteFill rebuild it from the newest Capacity views
	// read in between.
	BeginFill(ctx context.Context) (token string, err error)
	CompleteFill(ctx context.Context, token string, views []messageapi.EncodedView) (installed bool, err error)
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

// ListMessagesHandler handles ListMessages.
type ListMessagesHandler struct {
	store MessageReader
	cache PageCache
	fills singleflight.Group
}

// NewListMessagesHandler returns a ListMessagesHandler.
func NewListMessagesHandler(store MessageReader, cache PageCache) *ListMessagesHandler {
	if store == nil || cache == nil {
		panic("query: NewListMessagesHandler needs a store and a cache")
	}
	return &ListMessagesHandler{store: store, cache: cache}
}

func (q ListMessages) validate() (limit, offset int, before string, err error) {
	fields := map[string]string{}
	limit = messageapi.DefaultPageSize
	if q.Limit != nil {
		limit = *q.Limit
		if limit < 1 || limit > messageapi.MaxPageSize {
			fields["limit"] = messageapi.LimitRule
		}
	}
	if q.Page != nil {
		switch {
		case q.Cursor != nil:
			fields["page"] = "cannot be combined with cursor"
		case *q.Page < 1:
			fields["page"] = "must be an integer of at least 1"
		case len(fields) == 0 && (*q.Page-1) > messageapi.MaxPageOffset/limit:
			fields["page"] = fmt.Sprintf("may skip at most %d messages; use cursor to read further", messageapi.MaxPageOffset)
		default:
			offset = (*q.Page - 1) * limit
		}
	}
	if q.Cursor != nil && fields["page"] == "" {
		if before, err = decodeMessageCursor(*q.Cursor); err != nil {
			fields["cursor"] = messageapi.ErrorFields(err)["cursor"]
		}
	}
	if len(fields) > 0 {
		return 0, 0, "", messageapi.InvalidFields(fields)
	}
	return limit, offset, before, nil
}

// Handle returns the page. It asks for one message more than the limit to
// know whether a next page exists, without counting.
func (h *ListMessagesHandler) Handle(ctx context.Context, q ListMessages) (MessagePage, error) {
	limit, offset, before, err := q.validate()
	if err != nil {
		return MessagePage{}, err
	}
	var views []messageapi.EncodedView
	if before != "" {
		views, err = h.pageBefore(ctx, before, limit+1)
	} else {
		views, err = h.page(ctx, offset, limit+1)
	}
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

func (h *ListMessagesHandler) pageBefore(ctx context.Context, before string, count int) ([]messageapi.EncodedView, error) {
	if views, hit, err := h.cache.PageBefore(ctx, before, count); err == nil && hit {
		return views, nil
	}
	return h.read(ctx, messageapi.MessageRange{BeforeID: before, Limit: count})
}

// read reads views from PostgreSQL and encodes them.
func (h *ListMessagesHandler) read(ctx context.Context, r messageapi.MessageRange) ([]messageapi.EncodedView, error) {
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

func (h *ListMessagesHandler) page(ctx context.Context, offset, count int) ([]messageapi.EncodedView, error) {
	capacity := h.cache.Capacity()
	if offset+count > capacity {
		return h.read(ctx, messageapi.MessageRange{Offset: offset, Limit: count})
	}
	if views, hit, err := h.cache.Page(ctx, offset, count); err == nil && hit {
		return views, nil
	}
	latest, shared, err := h.fill(ctx)
	switch {
	case err != nil:
		return nil, err
	case latest == nil: // the cache cannot be filled now: read just this page
		return h.read(ctx, messageapi.MessageRange{Offset: offset, Limit: count})
	case shared:
		// This request joined a rebuild that another one began, perhaps
		// before a message this request must see was committed. The rebuilt
		// cache has that message (rebuilds merge writes made meanwhile), and
		// so does PostgreSQL; the rebuild's snapshot may not.
		if views, hit, err := h.cache.Page(ctx, offset, count); err == nil && hit {
			return views, nil
		}
		return h.read(ctx, messageapi.MessageRange{Offset: offset, Limit: count})
	}
	return window(latest, offset, count), nil
}

// fill rebuilds the cache from the newest Capacity views and returns them,
// or returns nil views when Redis cannot take a rebuild; shared reports
// that the rebuild was begun by another request. Concurrent misses in this
// process share one rebuild, so a cold cache under load costs one query,
// not one per request. The rebuild outlives a caller that gives up,
// because other callers wait for it.
func (h *ListMessagesHandler) fill(ctx context.Context) (views []messageapi.EncodedView, shared bool, err error) {
	v, err, shared := h.fills.Do("latest", func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		token, err := h.cache.BeginFill(ctx)
		if err != nil {
			return []messageapi.EncodedView(nil), nil
		}
		views, err := h.read(ctx, messageapi.MessageRange{Limit: h.cache.Capacity()})
		if err != nil {
			return nil, err
		}
		// A refused or failed install only means the next read misses too.
		_, _ = h.cache.CompleteFill(ctx, token, views)
		return views, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.([]messageapi.EncodedView), shared, nil
}

// window returns views[offset:offset+count], clipped to what exists.
func window(views []messageapi.EncodedView, offset, count int) []messageapi.EncodedView {
	if offset >= len(views) {
		return []messageapi.EncodedView{}
	}
	return views[offset:min(offset+count, len(views))]
}
