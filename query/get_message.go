package query

import (
	"context"

	"messageapi"
	"messageapi/validation"
)

// MessageGetter reads one message with its view.
type MessageGetter interface {
	GetMessage(ctx context.Context, id string) (messageapi.MessageView, error)
}

// GetMessage asks for one message by id; with UserID, with that user's
// own reactions on it.
type GetMessage struct {
	ID     string  `field:"id" validate:"uuid"`
	UserID *string `field:"user_id" validate:"omitnil,user_id"`
}

// GetMessageHandler handles GetMessage.
type GetMessageHandler struct {
	store MessageGetter
	own   OwnReactionReader
}

// NewGetMessageHandler returns a GetMessageHandler.
func NewGetMessageHandler(store MessageGetter, own OwnReactionReader) *GetMessageHandler {
	if store == nil || own == nil {
		panic("query: NewGetMessageHandler needs a store and an own-reaction reader")
	}
	return &GetMessageHandler{store: store, own: own}
}

// Handle returns the message, a not-found error, or an invalid-argument
// error when the id is not a UUID.
func (h *GetMessageHandler) Handle(ctx context.Context, q GetMessage) (messageapi.MessageView, error) {
	if err := validation.Check(q).Err(); err != nil {
		return messageapi.MessageView{}, err
	}
	id := validation.CanonicalUUID(q.ID)
	v, err := h.store.GetMessage(ctx, id)
	if err != nil || q.UserID == nil {
		return v, err
	}
	own, err := h.own.OwnReactions(ctx, []string{id}, *q.UserID)
	if err != nil {
		return messageapi.MessageView{}, err
	}
	mine := own[id]
	v.OwnReactions = &mine
	return v, nil
}
