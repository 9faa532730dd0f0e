package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"messageapi"
	"messageapi/validation"
)

// MessageReader reads messages with their views from the read model.
type MessageReader interface {
	ListMessages(ctx context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error)
}

// OwnReactionReader reads one user's live reactions on some messages.
type OwnReactionReader interface {
	OwnReactions(ctx context.Context, messageIDs []string, userID string) (map[string][]messageapi.Reaction, error)
}

// PageCache serves the latest messages. It owns how it stays exact (see
// package redis/pagecache): given a range of the newest messages, it answers
// from what it holds when it can, and otherwise calls load, which reads
// PostgreSQL, rebuilding itself from load when that pays.
type PageCache interface {
	Latest(ctx context.Context, r messageapi.MessageRange, load messageapi.LoadViews) ([]messageapi.EncodedView, error)
}

// ListMessages asks for a page of messages, newest first: the first page,
// page number Page, the page a Cursor points to (a next_cursor walks
// toward older messages, a prev_cursor toward the present), or the page
// Around a message, centred on it. Page, Cursor and Around exclude each
// other. Nil fields take their defaults.
// With UserID, every message carries own_reactions: that user's reactions.
type ListMessages struct {
	ChannelID string  `field:"channel_id" validate:"omitempty,channel_id"` // from the path; empty: messageapi.DefaultChannel
	Limit     *int    `field:"limit" validate:"omitnil,limit"`
	Page      *int    `field:"page"` // checked with cursor and around
	Cursor    *string `field:"cursor"`
	Around    *string `field:"around"`
	UserID    *string `field:"user_id" validate:"omitnil,user_id"`
}

// MessagePage is a page of messages, already encoded: pages inside the
// cached range are served as the bytes the cache holds. NextCursor, set
// only when older messages follow, continues toward older messages;
// PrevCursor, set only when newer messages exist beyond the page (a page
// that is not the newest), continues toward the present.
type MessagePage struct {
	Messages   []messageapi.EncodedView
	NextCursor string
	PrevCursor string
}

// JSON returns the page as the API writes it: {"messages": [...],
// "next_cursor": "...", "prev_cursor": "..."}, each cursor only when set.
// It splices the encoded views rather than re-encoding them: they are JSON
// this service wrote, and a cursor is base64url, which needs no escaping.
func (p MessagePage) JSON() []byte {
	n := 48 + len(p.NextCursor) + len(p.PrevCursor)
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
	for _, c := range [][2]string{{"next_cursor", p.NextCursor}, {"prev_cursor", p.PrevCursor}} {
		if c[1] != "" {
			b = append(b, `,"`+c[0]+`":"`...)
			b = append(b, c[1]...)
			b = append(b, '"')
		}
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
	own   OwnReactionReader
	cache PageCache
	heavy *semaphore.Weighted
}

// NewListMessagesHandler returns a ListMessagesHandler.
func NewListMessagesHandler(store MessageReader, own OwnReactionReader, cache PageCache, cfg ListMessagesConfig) *ListMessagesHandler {
	if store == nil || own == nil || cache == nil {
		panic("query: NewListMessagesHandler needs a store, an own-reaction reader and a cache")
	}
	n := cmp.Or(max(cfg.HeavyReads, 0), DefaultHeavyReads)
	return &ListMessagesHandler{store: store, own: own, cache: cache, heavy: semaphore.NewWeighted(int64(n))}
}

// validate checks the request and returns the range it asks for, with
// around set for a page around a message.
func (q ListMessages) validate() (r messageapi.MessageRange, around string, err error) {
	f := validation.Check(q)
	r = messageapi.MessageRange{ChannelID: q.ChannelID, Limit: messageapi.DefaultPageSize}
	if q.Limit != nil {
		r.Limit = *q.Limit
	}
	switch {
	case q.Around != nil && (q.Page != nil || q.Cursor != nil):
		f.Add("around", "cannot be combined with page or cursor")
	case q.Page != nil && q.Cursor != nil:
		f.Add("page", "cannot be combined with cursor")
	case q.Around != nil:
		if validation.Value(f, "around", *q.Around, "uuid") {
			around = validation.CanonicalUUID(*q.Around)
		}
	case q.Page != nil:
		if validation.Value(f, "page", *q.Page, "page") && !f.Has("limit") &&
			f.Check(*q.Page-1 <= messageapi.MaxPageOffset/r.Limit, "page", messageapi.PageDepthRule) {
			r.Offset = (*q.Page - 1) * r.Limit
		}
	case q.Cursor != nil:
		c, ok := decodeMessageCursor(*q.Cursor)
		f.Check(ok, "cursor", messageapi.CursorRule)
		if c.Newer {
			r.AfterID = c.ID
		} else {
			r.BeforeID = c.ID
		}
	}
	return r, around, f.Err()
}

// Handle returns the page: the cache's, or else the store's, with the
// user's own reactions spliced into each message when it names a user.
func (h *ListMessagesHandler) Handle(ctx context.Context, q ListMessages) (MessagePage, error) {
	r, around, err := q.validate()
	if err != nil {
		return MessagePage{}, err
	}
	var p MessagePage
	switch {
	case around != "":
		p, err = h.around(ctx, r.ChannelID, around, r.Limit)
	case r.AfterID != "":
		p, err = h.newer(ctx, r)
	default:
		p, err = h.page(ctx, r)
	}
	if err != nil || q.UserID == nil {
		return p, err
	}
	return p, h.addOwnReactions(ctx, p.Messages, *q.UserID)
}

// addOwnReactions splices each message's reactions by userID into its
// encoded view: one indexed read for the whole page, and the cached bytes
// are not decoded or encoded again.
func (h *ListMessagesHandler) addOwnReactions(ctx context.Context, views []messageapi.EncodedView, userID string) error {
	if len(views) == 0 {
		return nil
	}
	ids := make([]string, len(views))
	for i, v := range views {
		ids[i] = v.ID
	}
	own, err := h.own.OwnReactions(ctx, ids, userID)
	if err != nil {
		return err
	}
	for i, v := range views {
		if views[i], err = v.WithOwnReactions(own[v.ID]); err != nil {
			return err
		}
	}
	return nil
}

// page returns a page read downward: from the top, a page number or an
// older-direction cursor. It asks for one message more than the limit to
// know whether more follow, without counting.
func (h *ListMessagesHandler) page(ctx context.Context, r messageapi.MessageRange) (MessagePage, error) {
	limit := r.Limit
	r.Limit++
	views, err := h.cache.Latest(ctx, r, h.load)
	if err != nil {
		return MessagePage{}, err
	}
	p := MessagePage{Messages: views}
	if len(views) > limit {
		p.Messages = views[:limit]
		p.NextCursor = encodeMessageCursor(messageCursor{ID: views[limit-1].ID})
	}
	if len(p.Messages) > 0 && (r.BeforeID != "" || r.Offset > 0) {
		p.PrevCursor = encodeMessageCursor(messageCursor{ID: p.Messages[0].ID, Newer: true})
	}
	return p, nil
}

// newer returns the page of the messages right after r.AfterID, toward the
// present. Older messages always follow it: at least r.AfterID's.
func (h *ListMessagesHandler) newer(ctx context.Context, r messageapi.MessageRange) (MessagePage, error) {
	limit := r.Limit
	r.Limit++
	views, err := h.load(ctx, r)
	if err != nil {
		return MessagePage{}, err
	}
	p := MessagePage{Messages: views}
	if len(views) > limit { // the newest is beyond the page
		p.Messages = views[1:]
	}
	if len(p.Messages) > 0 {
		p.NextCursor = encodeMessageCursor(messageCursor{ID: p.Messages[len(p.Messages)-1].ID})
		if len(views) > limit {
			p.PrevCursor = encodeMessageCursor(messageCursor{ID: p.Messages[0].ID, Newer: true})
		}
	}
	return p, nil
}

// around returns the page centred on the message id: limit/2 newer
// messages, the message, and older ones to fill the limit; near either end
// of the list the other side fills in. A jump to a message in the
// history, with cursors to walk both ways from it.
func (h *ListMessagesHandler) around(ctx context.Context, channel, id string, limit int) (MessagePage, error) {
	var newer, older []messageapi.EncodedView // newest first, each up to limit+1
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		newer, err = h.load(gctx, messageapi.MessageRange{ChannelID: channel, AfterID: id, Limit: limit + 1})
		return err
	})
	g.Go(func() (err error) {
		older, err = h.load(gctx, messageapi.MessageRange{ChannelID: channel, AtOrBeforeID: id, Limit: limit + 1})
		return err
	})
	if err := g.Wait(); err != nil {
		return MessagePage{}, err
	}
	if len(older) == 0 || older[0].ID != id {
		return MessagePage{}, messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	}
	// newer ends with the messages right after id; older starts with id.
	n := min(len(newer), limit/2+max(0, limit-limit/2-len(older)))
	o := min(len(older), limit-n)
	p := MessagePage{Messages: append(slices.Clip(newer[len(newer)-n:]), older[:o]...)}
	if len(newer) > n {
		p.PrevCursor = encodeMessageCursor(messageCursor{ID: p.Messages[0].ID, Newer: true})
	}
	if len(older) > o {
		p.NextCursor = encodeMessageCursor(messageCursor{ID: p.Messages[len(p.Messages)-1].ID})
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
