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

// GetMessage asks for one message by id.
type GetMessage struct {
	ID string
}

// GetMessageHandler handles GetMessage.
type GetMessageHandler struct {
	store MessageGetter
}

// NewGetMessageHandler returns a GetMessageHandler.
func NewGetMessageHandler(store MessageGetter) *GetMessageHandler {
	if store == nil {
		panic("query: NewGetMessageHandler needs a store")
	}
	return &GetMessageHandler{store: store}
}

// Handle returns the message, a not-found error, or an invalid-argument
// error when the id is not a UUID.
func (h *GetMessageHandler) Handle(ctx context.Context, q GetMessage) (messageapi.MessageView, error) {
	f := messageapi.FieldErrors{}
	id := parseID(f, "id", q.ID)
	if err := f.Err(); err != nil {
		return messageapi.MessageView{}, err
	}
	return h.store.GetMessage(ctx, id)
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
