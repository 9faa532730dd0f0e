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

// Handle returns the page, or a not-found error for an unknown message.
func (h *ListReactionsHandler) Handle(ctx context.Context, q ListReactions) (ReactionPage, error) {
	r := messageapi.ReactionRange{Limit: messageapi.DefaultPageSize}
	fields := map[string]string{}
	id, err := ParseID("id", q.MessageID)
	if err != nil {
		fields["id"] = "must be a UUID"
	}
	r.MessageID = id
	if q.Limit != nil {
		r.Limit = *q.Limit
		if r.Limit < 1 || r.Limit > messageapi.MaxPageSize {
			fields["limit"] = messageapi.LimitRule
		}
	}
	if q.Type != nil {
		if r.Type = *q.Type; !messageapi.ValidReactionType(r.Type) {
			fields["type"] = messageapi.ReactionTypeRule
		}
	}
	if q.UserID != nil {
		if r.UserID = *q.UserID; !messageapi.ValidUserID(r.UserID) {
			fields["user_id"] = messageapi.UserIDRule
		}
	}
	if q.Cursor != nil {
		c, err := decodeReactionCursor(*q.Cursor)
		if err != nil {
			fields["cursor"] = messageapi.ErrorFields(err)["cursor"]
		}
		r.BeforeCreatedAt, r.BeforeID = c.CreatedAt, c.ID
	}
	if len(fields) > 0 {
		return ReactionPage{}, messageapi.InvalidFields(fields)
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
