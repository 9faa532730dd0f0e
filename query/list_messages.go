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
	Page(ctx context.Context, offset, count int) (views []messageapi.MessageView, hit bool, err error)
	PageBefore(ctx context.Context, beforeID string, count int) (views []messageapi.MessageView, hit bool, err error)
	// BeginFill and CompleteFill rebuild it from the newest Capacity views
	// read in between.
	BeginFill(ctx context.Context) (token string, err error)
	CompleteFill(ctx context.Context, token string, views []messageapi.MessageView) (installed bool, err error)
}

// ListMessages asks for a page of messages, newest first. Page and Cursor
// exclude each other; without either it is the first page. Nil fields take
// their defaults.
type ListMessages struct {
	Limit  *int
	Page   *int
	Cursor *string
}

// MessagePage is a page of messages. NextCursor is set only when more
// messages follow.
type MessagePage struct {
	Messages   []messageapi.MessageView `json:"messages"`
	NextCursor string                   `json:"next_cursor,omitempty"`
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
	var views []messageapi.MessageView
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

func (h *ListMessagesHandler) pageBefore(ctx context.Context, before string, count int) ([]messageapi.MessageView, error) {
	if views, hit, err := h.cache.PageBefore(ctx, before, count); err == nil && hit {
		return views, nil
	}
	return h.store.ListMessages(ctx, messageapi.MessageRange{BeforeID: before, Limit: count})
}

func (h *ListMessagesHandler) page(ctx context.Context, offset, count int) ([]messageapi.MessageView, error) {
	capacity := h.cache.Capacity()
	if offset+count > capacity {
		return h.store.ListMessages(ctx, messageapi.MessageRange{Offset: offset, Limit: count})
	}
	if views, hit, err := h.cache.Page(ctx, offset, count); err == nil && hit {
		return views, nil
	}
	latest, err := h.fill(ctx)
	if err != nil {
		return nil, err
	}
	if latest == nil { // the cache cannot be filled now: read just this page
		return h.store.ListMessages(ctx, messageapi.MessageRange{Offset: offset, Limit: count})
	}
	return window(latest, offset, count), nil
}

// fill rebuilds the cache from the newest Capacity views and returns them,
// or returns nil views when Redis cannot take a rebuild. Concurrent misses
// in this process share one rebuild, so a cold cache under load costs one
// query, not one per request. The rebuild outlives a caller that gives up,
// because other callers wait for it.
func (h *ListMessagesHandler) fill(ctx context.Context) ([]messageapi.MessageView, error) {
	v, err, _ := h.fills.Do("latest", func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		token, err := h.cache.BeginFill(ctx)
		if err != nil {
			return []messageapi.MessageView(nil), nil
		}
		views, err := h.store.ListMessages(ctx, messageapi.MessageRange{Limit: h.cache.Capacity()})
		if err != nil {
			return nil, err
		}
		// A refused or failed install only means the next read misses too.
		_, _ = h.cache.CompleteFill(ctx, token, views)
		return views, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]messageapi.MessageView), nil
}

// window returns views[offset:offset+count], clipped to what exists.
func window(views []messageapi.MessageView, offset, count int) []messageapi.MessageView {
	if offset >= len(views) {
		return []messageapi.MessageView{}
	}
	return views[offset:min(offset+count, len(views))]
}
