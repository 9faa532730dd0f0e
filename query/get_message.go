package query

import (
	"context"

	"github.com/google/uuid"

	"messageapi"
)

// MessageGetter reads one message with its view.
type MessageGetter interface {
	GetMessage(ctx context.Context, id string) (messageapi.MessageView, error)
}

// GetMessage asks for one message by id; with UserID, with that user's
// own reactions on it.
type GetMessage struct {
	ID     string
	UserID *string
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
	f := messageapi.FieldErrors{}
	id := parseID(f, "id", q.ID)
	if q.UserID != nil {
		f.Check(messageapi.ValidUserID(*q.UserID), "user_id", messageapi.UserIDRule)
	}
	if err := f.Err(); err != nil {
		return messageapi.MessageView{}, err
	}
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

// parseID returns s in canonical form when it is a UUID, or records under
// field that it is not one and returns "".
func parseID(f messageapi.FieldErrors, field, s string) string {
	u, err := uuid.Parse(s)
	if !f.Check(err == nil && messageapi.ValidUUIDBraces(s), field, messageapi.UUIDRule) {
		return ""
	}
	return u.String()
}
