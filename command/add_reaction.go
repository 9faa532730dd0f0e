package command

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/validation"
)

// ReactionStore is the storage the reaction commands write to.
type ReactionStore interface {
	// PutReaction creates or re-scores the reaction of (message, user,
	// type); see messageapi.PutReactionResult.
	PutReaction(ctx context.Context, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error)
	// DeleteReaction deletes the reaction of (message, user, type).
	DeleteReaction(ctx context.Context, p messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error)
}

// OwnReactionCache holds readers' own reactions. A reaction write tells
// it whose reactions on which message changed, after the write returns
// and before it is answered, so that its client reads the change at once.
type OwnReactionCache interface {
	Forget(ctx context.Context, messageID, userID string)
}

// EventPublisher announces committed reaction changes to the projection.
type EventPublisher interface {
	Publish(ctx context.Context, e messageapi.ReactionChanged) error
}

// AddReaction posts a user's reaction of one type to a message. Posting it
// again sets the score (Medium-style claps: the score is that user's
// total). Score defaults to 1. EnforceUnique makes it the user's only
// reaction on the message, removing their other types, as chat UIs with
// one reaction per user do.
type AddReaction struct {
	MessageID     string `json:"-" field:"id" validate:"uuid"` // from the path
	Type          string `json:"type" validate:"required,reaction_type"`
	UserID        string `json:"user_id" validate:"required,user_id"`
	Score         *int   `json:"score" validate:"omitnil,score"`
	EnforceUnique bool   `json:"enforce_unique"`
}

// validate checks every field, and returns the message id in canonical
// form and the score to store.
func (c AddReaction) validate() (messageID string, score int, err error) {
	if err := validation.Check(c).Err(); err != nil {
		return "", 0, err
	}
	score = messageapi.DefaultScore
	if c.Score != nil {
		score = *c.Score
	}
	return validation.CanonicalUUID(c.MessageID), score, nil
}

// AddReactionConfig sets the rules of AddReactionHandler.
type AddReactionConfig struct {
	// MaxTypes caps the distinct reaction types on one message; 0 means
	// messageapi.DefaultMaxReactionTypes, a negative value no cap.
	MaxTypes int
}

// AddReactionHandler handles AddReaction.
type AddReactionHandler struct {
	store     ReactionStore
	publisher EventPublisher
	log       *slog.Logger
	now       func() time.Time
	maxTypes  int
	own       OwnReactionCache
}

// NewAddReactionHandler returns an AddReactionHandler.
func NewAddReactionHandler(store ReactionStore, publisher EventPublisher, log *slog.Logger, cfg AddReactionConfig) *AddReactionHandler {
	if store == nil || publisher == nil || log == nil {
		panic("command: NewAddReactionHandler needs a store, a publisher and a logger")
	}
	maxTypes := cmp.Or(cfg.MaxTypes, messageapi.DefaultMaxReactionTypes)
	return &AddReactionHandler{store: store, publisher: publisher, log: log, now: time.Now, maxTypes: max(maxTypes, 0)}
}

// ForgetIn makes h tell own of every write it makes.
func (h *AddReactionHandler) ForgetIn(own OwnReactionCache) *AddReactionHandler {
	h.own = own
	return h
}

// Handle commits the reaction and returns it with created == true when it
// is new (201) and false when an existing one was re-scored (200). The
// stream append happens after the commit and cannot fail the request: a
// change whose entry is lost is folded by the projection's sweeper.
func (h *AddReactionHandler) Handle(ctx context.Context, cmd AddReaction) (messageapi.Reaction, bool, error) {
	messageID, score, err := cmd.validate()
	if err != nil {
		return messageapi.Reaction{}, false, err
	}
	res, err := h.store.PutReaction(ctx, messageapi.PutReactionParams{
		ID:        uuid.Must(uuid.NewV7()).String(),
		MessageID: messageID,
		UserID:    cmd.UserID,
		Type:      cmd.Type,
		Score:     score,
		At:        messageapi.NewTime(h.now()).Time,
		MaxTypes:  h.maxTypes,
		Unique:    cmd.EnforceUnique,
	})
	// Also after an error: a write whose answer was lost may have
	// committed.
	forget(ctx, h.own, messageID, cmd.UserID)
	if err != nil {
		return messageapi.Reaction{}, false, err
	}
	r := res.Reaction
	publish(ctx, h.publisher, h.log, messageapi.ReactionChanged{
		ReactionID: r.ID, MessageID: r.MessageID, ChannelID: res.ChannelID, Version: res.Version, ChangedAt: r.UpdatedAt.Time,
	})
	for _, gone := range res.Removed {
		publish(ctx, h.publisher, h.log, messageapi.ReactionChanged{
			ReactionID: gone.ID, MessageID: r.MessageID, ChannelID: res.ChannelID, Version: gone.Version, ChangedAt: r.UpdatedAt.Time,
		})
	}
	return r, res.Created, nil
}

// forget tells own, when set, that the user's reactions on the message
// may have changed.
func forget(ctx context.Context, own OwnReactionCache, messageID, userID string) {
	if own != nil {
		own.Forget(ctx, messageID, userID)
	}
}

// publish appends e after its change committed. A failure is logged and
// otherwise ignored: PostgreSQL holds the change, and the sweeper folds
// changes whose entries never arrived.
func publish(ctx context.Context, p EventPublisher, log *slog.Logger, e messageapi.ReactionChanged) {
	if err := p.Publish(context.WithoutCancel(ctx), e); err != nil {
		log.DebugContext(ctx, "stream append failed; the sweeper will fold the change",
			"reaction_id", e.ReactionID, "err", err)
	}
}
