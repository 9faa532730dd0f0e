package command

import (
	"context"
	"log/slog"
	"time"

	"messageapi"
	"messageapi/validation"
)

// RemoveReaction deletes a user's reaction of one type from a message.
type RemoveReaction struct {
	MessageID string `field:"id" validate:"uuid"`
	Type      string `field:"type" validate:"required,reaction_type"`
	UserID    string `field:"user_id" validate:"required,user_id"`
}

// validate checks every field and returns the message id in canonical form.
func (c RemoveReaction) validate() (messageID string, err error) {
	if err := validation.Check(c).Err(); err != nil {
		return "", err
	}
	return validation.CanonicalUUID(c.MessageID), nil
}

// RemoveReactionHandler handles RemoveReaction.
type RemoveReactionHandler struct {
	store     ReactionStore
	publisher EventPublisher
	log       *slog.Logger
	now       func() time.Time
	own       OwnReactionCache
}

// NewRemoveReactionHandler returns a RemoveReactionHandler.
func NewRemoveReactionHandler(store ReactionStore, publisher EventPublisher, log *slog.Logger) *RemoveReactionHandler {
	if store == nil || publisher == nil || log == nil {
		panic("command: NewRemoveReactionHandler needs a store, a publisher and a logger")
	}
	return &RemoveReactionHandler{store: store, publisher: publisher, log: log, now: time.Now}
}

// ForgetIn makes h tell own of every write it makes.
func (h *RemoveReactionHandler) ForgetIn(own OwnReactionCache) *RemoveReactionHandler {
	h.own = own
	return h
}

// Handle deletes the reaction, or returns a not-found error when the
// message or the reaction does not exist. Like AddReaction, it announces
// the change after the commit, and a failed announcement is healed by the
// sweeper.
func (h *RemoveReactionHandler) Handle(ctx context.Context, cmd RemoveReaction) error {
	messageID, err := cmd.validate()
	if err != nil {
		return err
	}
	at := messageapi.NewTime(h.now()).Time
	res, err := h.store.DeleteReaction(ctx, messageapi.DeleteReactionParams{
		MessageID: messageID, UserID: cmd.UserID, Type: cmd.Type, At: at,
	})
	forget(ctx, h.own, messageID, cmd.UserID)
	if err != nil {
		return err
	}
	publish(ctx, h.publisher, h.log, messageapi.ReactionChanged{
		ReactionID: res.ReactionID, MessageID: messageID, ChannelID: res.ChannelID, Version: res.Version, ChangedAt: at,
	})
	return nil
}
