package command

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"messageapi"
)

// ReactionStore is the storage the reaction commands write to.
type ReactionStore interface {
	// PutReaction creates or re-scores the reaction of r's (message, user,
	// type) and returns the stored reaction, its version and whether it is
	// new to the client.
	PutReaction(ctx context.Context, r messageapi.Reaction) (messageapi.Reaction, int64, bool, error)
	// DeleteReaction deletes the reaction of (message, user, type) at at
	// and returns its id and version.
	DeleteReaction(ctx context.Context, messageID, userID, reactionType string, at time.Time) (string, int64, error)
}

// EventPublisher announces committed reaction changes to the projection.
type EventPublisher interface {
	Publish(ctx context.Context, e messageapi.ReactionChanged) error
}

// AddReaction posts a user's reaction of one type to a message. Posting it
// again sets the score (Medium-style claps: the score is that user's
// total). Score defaults to 1.
type AddReaction struct {
	MessageID string `json:"-" field:"id" validate:"required,uuid"`
	Type      string `json:"type" validate:"required,reaction_type"`
	UserID    string `json:"user_id" validate:"required,user_id"`
	Score     *int   `json:"score" validate:"omitnil,score"`
}

// AddReactionHandler handles AddReaction.
type AddReactionHandler struct {
	store     ReactionStore
	publisher EventPublisher
	log       *slog.Logger
	validate  *validator.Validate
	now       func() time.Time
}

// NewAddReactionHandler returns an AddReactionHandler.
func NewAddReactionHandler(store ReactionStore, publisher EventPublisher, log *slog.Logger) *AddReactionHandler {
	if store == nil || publisher == nil || log == nil {
		panic("command: NewAddReactionHandler needs a store, a publisher and a logger")
	}
	return &AddReactionHandler{store: store, publisher: publisher, log: log, validate: newValidator(), now: time.Now}
}

// Handle commits the reaction and returns it with created == true when it
// is new (201) and false when an existing one was re-scored (200). The
// stream append happens after the commit and cannot fail the request: a
// change whose entry is lost is folded by the projection's sweeper.
func (h *AddReactionHandler) Handle(ctx context.Context, cmd AddReaction) (messageapi.Reaction, bool, error) {
	if err := validate(h.validate, cmd); err != nil {
		return messageapi.Reaction{}, false, err
	}
	score := messageapi.DefaultScore
	if cmd.Score != nil {
		score = *cmd.Score
	}
	now := messageapi.NewTime(h.now())
	r, version, created, err := h.store.PutReaction(ctx, messageapi.Reaction{
		ID:        uuid.Must(uuid.NewV7()).String(),
		MessageID: uuid.MustParse(cmd.MessageID).String(), // validated above
		UserID:    cmd.UserID,
		Type:      cmd.Type,
		Score:     score,
		CreatedAt: now,
		UpdatedAt: now,
	})
	if err != nil {
		return messageapi.Reaction{}, false, err
	}
	publish(ctx, h.publisher, h.log, messageapi.ReactionChanged{
		ReactionID: r.ID, MessageID: r.MessageID, Version: version, ChangedAt: r.UpdatedAt.Time,
	})
	return r, created, nil
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
