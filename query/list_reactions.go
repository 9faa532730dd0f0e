package query

import (
	"context"

	"messageapi"
	"messageapi/validation"
)

// ReactionLister lists a message's reactions.
type ReactionLister interface {
	ListReactions(ctx context.Context, r messageapi.ReactionRange) ([]messageapi.Reaction, error)
}

// ListReactions asks for a page of a message's reactions, newest first,
// optionally only of one type or one user. Nil fields are absent.
type ListReactions struct {
	MessageID string  `field:"id" validate:"uuid"`
	Limit     *int    `field:"limit" validate:"omitnil,limit"`
	Cursor    *string `field:"cursor"`
	Type      *string `field:"type" validate:"omitnil,reaction_type"`
	UserID    *string `field:"user_id" validate:"omitnil,user_id"`
}

// ReactionPage is a page of reactions. NextCursor is set only when more
// reactions follow.
type ReactionPage struct {
	Reactions  []messageapi.Reaction `json:"reactions"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// ListReactionsHandler handles ListReactions.
type ListReactionsHandler struct {
	store ReactionLister
}

// NewListReactionsHandler returns a ListReactionsHandler.
func NewListReactionsHandler(store ReactionLister) *ListReactionsHandler {
	if store == nil {
		panic("query: NewListReactionsHandler needs a store")
	}
	return &ListReactionsHandler{store: store}
}

// validate checks the request and returns the range it asks for.
func (q ListReactions) validate() (messageapi.ReactionRange, error) {
	f := validation.Check(q)
	r := messageapi.ReactionRange{MessageID: validation.CanonicalUUID(q.MessageID), Limit: messageapi.DefaultPageSize}
	if q.Limit != nil {
		r.Limit = *q.Limit
	}
	if q.Type != nil {
		r.Type = *q.Type
	}
	if q.UserID != nil {
		r.UserID = *q.UserID
	}
	if q.Cursor != nil {
		c, ok := decodeReactionCursor(*q.Cursor)
		f.Check(ok, "cursor", messageapi.CursorRule)
		r.BeforeCreatedAt, r.BeforeID = c.CreatedAt, c.ID
	}
	return r, f.Err()
}

// Handle returns the page, or a not-found error for an unknown message.
func (h *ListReactionsHandler) Handle(ctx context.Context, q ListReactions) (ReactionPage, error) {
	r, err := q.validate()
	if err != nil {
		return ReactionPage{}, err
	}
	limit := r.Limit
	r.Limit++ // one more tells whether a next page exists
	list, err := h.store.ListReactions(ctx, r)
	if err != nil {
		return ReactionPage{}, err
	}
	p := ReactionPage{Reactions: list}
	if len(list) > limit {
		last := list[limit-1]
		p.Reactions = list[:limit]
		p.NextCursor = encodeReactionCursor(reactionCursor{CreatedAt: last.CreatedAt.Time, ID: last.ID})
	}
	return p, nil
}
