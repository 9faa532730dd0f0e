package query

import (
	"context"

	"messageapi"
)

// ReactionLister lists a message's reactions.
type ReactionLister interface {
	ListReactions(ctx context.Context, r messageapi.ReactionRange) ([]messageapi.Reaction, error)
}

// ListReactions asks for a page of a message's reactions, newest first,
// optionally only of one type or one user. Nil fields are absent.
type ListReactions struct {
	MessageID string
	Limit     *int
	Cursor    *string
	Type      *string
	UserID    *string
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
	f := messageapi.FieldErrors{}
	r := messageapi.ReactionRange{MessageID: parseID(f, "id", q.MessageID), Limit: messageapi.DefaultPageSize}
	if q.Limit != nil {
		r.Limit = *q.Limit
		f.Check(r.Limit >= 1 && r.Limit <= messageapi.MaxPageSize, "limit", messageapi.LimitRule)
	}
	if q.Type != nil {
		r.Type = *q.Type
		f.Check(messageapi.ValidReactionType(r.Type), "type", messageapi.ReactionTypeRule)
	}
	if q.UserID != nil {
		r.UserID = *q.UserID
		f.Check(messageapi.ValidUserID(r.UserID), "user_id", messageapi.UserIDRule)
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
