package command

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"messageapi"
)

// RemoveReaction deletes a user's reaction of one type from a message.
type RemoveReaction struct {
	MessageID string `field:"id" validate:"required,uuid"`
	Type      string `field:"type" validate:"required,reaction_type"`
	UserID    string `field:"user_id" validate:"required,user_id"`
}

// RemoveReactionHandler handles RemoveReaction.
type RemoveReactionHandler struct {
	store     ReactionStore
	publisher EventPublisher
	log       *slog.Logger
	validate  *validator.Validate
	now       func() time.Time
}

// NewRemoveReactionHandler returns a RemoveReactionHandler.
func NewRemoveReactionHandler(store ReactionStore, publisher EventPublisher, log *slog.Logger) *RemoveReactionHandler {
	if store == nil || publisher == nil || log == nil {
		panic("command: NewRemoveReactionHandler needs a store, a publisher and a logger")
	}
	return &RemoveReactionHandler{store: store, publisher: publisher, log: log, validate: newValidator(), now: time.Now}
}

// Handle deletes the reaction, or returns a not-found error when the
// message or the reaction does not exist. Like AddReaction, it announces
// the change after the commit, and a failed announcement is healed by the
// sweeper.
func (h *RemoveReactionHandler) Handle(ctx context.Context, cmd RemoveReaction) error {
	if err := validate(h.validate, cmd); err != nil {
		return err
	}
	messageID := uuid.MustParse(cmd.MessageID).String() // validated above
	at := messageapi.NewTime(h.now())
	id, version, err := h.store.DeleteReaction(ctx, messageID, cmd.UserID, cmd.Type, at.Time)
	if err != nil {
		return err
	}
	publish(ctx, h.publisher, h.log, messageapi.ReactionChanged{
		ReactionID: id, MessageID: messageID, Version: version, ChangedAt: at.Time,
	})
	return nil
}
