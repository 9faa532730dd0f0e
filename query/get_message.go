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
	id, err := ParseID("id", q.ID)
	if err != nil {
		return messageapi.MessageView{}, err
	}
	return h.store.GetMessage(ctx, id)
}

// ParseID returns s in canonical form when it is a UUID, or an
// invalid-argument error that names field.
func ParseID(field, s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return "", messageapi.InvalidFields(map[string]string{field: "must be a UUID"})
	}
	return u.String(), nil
}
