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

// PutReaction creates the reaction of p's (message, user, type), or sets
// the score of the existing one, in one call of put_reaction (migration
// 002) that commits before it returns. Posting a deleted reaction again
// revives its row as a new reaction. A message that does not exist is a
// not-found error (the foreign key).
func (s *ReactionStore) PutReaction(ctx context.Context, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var (
		res              messageapi.PutReactionResult
		created, updated time.Time
	)
	err := s.db.pool.QueryRow(ctx, `
		select id::text, score, created_at, updated_at, version, created
		from put_reaction($1, $2, $3, $4, $5, $6)`,
		p.ID, p.MessageID, p.UserID, p.Type, p.Score, p.At,
	).Scan(&res.Reaction.ID, &res.Reaction.Score, &created, &updated, &res.Version, &res.Created)
	if err != nil {
		return messageapi.PutReactionResult{}, translate(err, "put reaction")
	}
	r := &res.Reaction
	r.MessageID, r.UserID, r.Type = p.MessageID, p.UserID, p.Type
	r.CreatedAt, r.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
	return res, nil
}

// DeleteReaction marks the reaction of p's (message, user, type) deleted,
// leaving a tombstone for the projection to fold. An unknown message or
// reaction is a not-found error.
func (s *ReactionStore) DeleteReaction(ctx context.Context, p messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var res messageapi.DeleteReactionResult
	err := s.db.pool.QueryRow(ctx, `
		update reactions set deleted_at = $4, updated_at = $4, version = version + 1
		where message_id = $1 and user_id = $2 and type = $3 and deleted_at is null
		returning id::text, version`,
		p.MessageID, p.UserID, p.Type, p.At,
	).Scan(&res.ReactionID, &res.Version)
	if isNoRows(err) {
		if err := s.requireMessage(ctx, p.MessageID); err != nil {
			return res, err
		}
		return res, messageapi.Errorf(messageapi.ENOTFOUND, "reaction not found")
	}
	return res, translate(err, "delete reaction")
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
	sql.WriteString(`select ` + reactionColumns + `
		from reactions r where message_id = $1 and deleted_at is null`)
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

// reactionColumns selects what scanReaction reads, from reactions r.
const reactionColumns = `r.id::text, r.message_id::text, r.user_id, r.type, r.score, r.created_at, r.updated_at`

func scanReaction(row pgx.CollectableRow) (messageapi.Reaction, error) {
	var r messageapi.Reaction
	var created, updated time.Time
	err := row.Scan(&r.ID, &r.MessageID, &r.UserID, &r.Type, &r.Score, &created, &updated)
	r.CreatedAt, r.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
	return r, err
}
