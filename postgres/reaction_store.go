package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// ReactionStore writes and lists reactions (the write model).
type ReactionStore struct {
	db *DB
}

// NewReactionStore returns a ReactionStore on db.
func NewReactionStore(db *DB) *ReactionStore {
	return &ReactionStore{db: db}
}

// PutReaction creates the reaction of r's (message, user, type), or sets
// the score of the existing one, in one call of put_reaction (migration
// 002) that commits before it returns. Posting a deleted reaction again revives its row as a new
// reaction. It returns the stored reaction, its new version and whether it
// is new to the client (created, or revived from a tombstone).
//
// A message that does not exist is a not-found error (the foreign key).
func (s *ReactionStore) PutReaction(ctx context.Context, r messageapi.Reaction) (messageapi.Reaction, int64, bool, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var (
		out              messageapi.Reaction
		created, updated time.Time
		version          int64
		isNew            bool
	)
	err := s.db.pool.QueryRow(ctx, `
		select id::text, score, created_at, updated_at, version, created
		from put_reaction($1, $2, $3, $4, $5, $6)`,
		r.ID, r.MessageID, r.UserID, r.Type, r.Score, r.CreatedAt.Time,
	).Scan(&out.ID, &out.Score, &created, &updated, &version, &isNew)
	if err != nil {
		return out, 0, false, translate(err, "put reaction")
	}
	out.MessageID, out.UserID, out.Type = r.MessageID, r.UserID, r.Type
	out.CreatedAt, out.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
	return out, version, isNew, nil
}

// DeleteReaction marks the reaction of (message, user, type) deleted at
// at, leaving a tombstone for the projection to fold, and returns its id
// and new version. An unknown message or reaction is a not-found error.
func (s *ReactionStore) DeleteReaction(ctx context.Context, messageID, userID, reactionType string, at time.Time) (string, int64, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var id string
	var version int64
	err := s.db.pool.QueryRow(ctx, `
		update reactions set deleted_at = $4, updated_at = $4, version = version + 1
		where message_id = $1 and user_id = $2 and type = $3 and deleted_at is null
		returning id::text, version`,
		messageID, userID, reactionType, at,
	).Scan(&id, &version)
	if isNoRows(err) {
		if err := s.requireMessage(ctx, messageID); err != nil {
			return "", 0, err
		}
		return "", 0, messageapi.Errorf(messageapi.ENOTFOUND, "reaction not found")
	}
	return id, version, translate(err, "delete reaction")
}

// requireMessage returns a not-found error when the message does not exist.
func (s *ReactionStore) requireMessage(ctx context.Context, messageID string) error {
	var exists bool
	err := s.db.pool.QueryRow(ctx, `select exists (select 1 from messages where id = $1)`, messageID).Scan(&exists)
	if err != nil {
		return translate(err, "check message")
	}
	if !exists {
		return messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	}
	return nil
}

// ListReactions returns a message's live reactions, newest first: one range
// scan of reactions_message_latest_idx, or of the per-type index when r
// filters by type. An unknown message is a not-found error.
func (s *ReactionStore) ListReactions(ctx context.Context, r messageapi.ReactionRange) ([]messageapi.Reaction, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var sql strings.Builder
	sql.WriteString(`select id::text, message_id::text, user_id, type, score, created_at, updated_at
		from reactions where message_id = $1 and deleted_at is null`)
	args := []any{r.MessageID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if r.Type != "" {
		sql.WriteString(" and type = " + arg(r.Type))
	}
	if r.UserID != "" {
		sql.WriteString(" and user_id = " + arg(r.UserID))
	}
	if r.BeforeID != "" {
		sql.WriteString(" and (created_at, id) < (" + arg(r.BeforeCreatedAt) + ", " + arg(r.BeforeID) + "::uuid)")
	}
	sql.WriteString(" order by created_at desc, id desc limit " + arg(r.Limit))
	rows, err := s.db.pool.Query(ctx, sql.String(), args...)
	if err != nil {
		return nil, translate(err, "list reactions")
	}
	list, err := pgx.CollectRows(rows, scanReaction)
	if err != nil {
		return nil, translate(err, "list reactions")
	}
	if len(list) == 0 {
		if err := s.requireMessage(ctx, r.MessageID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func scanReaction(row pgx.CollectableRow) (messageapi.Reaction, error) {
	var r messageapi.Reaction
	var created, updated time.Time
	err := row.Scan(&r.ID, &r.MessageID, &r.UserID, &r.Type, &r.Score, &created, &updated)
	r.CreatedAt, r.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
	return r, err
}
