package postgres

import (
	"context"
	"fmt"
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
// 003) that commits before it returns. Posting a deleted reaction again
// revives its row as a new reaction. An unknown message is a not-found
// error; a type beyond p.MaxTypes, a limit error.
func (s *ReactionStore) PutReaction(ctx context.Context, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	return scanPut(s.db.pool.QueryRow(ctx, putReactionSQL, p.ID, p.MessageID, p.UserID, p.Type, p.Score, p.At, p.MaxTypes, p.Unique), p)
}

// putReactionSQL calls put_reaction; its outputs are null unless the put
// stored a row.
const putReactionSQL = `
	select status, coalesce(id::text, ''), coalesce(score, 0), coalesce(created_at, 'epoch'),
		coalesce(updated_at, 'epoch'), coalesce(version, 0), removed_ids::text[], removed_versions
	from put_reaction($1, $2, $3, $4, $5, $6, $7, $8)`

// scanPut reads the row of putReactionSQL for p.
func scanPut(row pgx.Row, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error) {
	var (
		status           string
		created, updated time.Time
		removedIDs       []string
		removedVersions  []int64
		res              messageapi.PutReactionResult
		r                = &res.Reaction
	)
	err := row.Scan(&status, &r.ID, &r.Score, &created, &updated, &res.Version, &removedIDs, &removedVersions)
	if err != nil {
		return messageapi.PutReactionResult{}, translate(err, "put reaction")
	}
	switch status {
	case "not_found":
		return messageapi.PutReactionResult{}, messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	case "too_many_types":
		return messageapi.PutReactionResult{}, &messageapi.Error{
			Code:    messageapi.ELIMIT,
			Message: fmt.Sprintf("the message has %d reaction types already; react with one of them", p.MaxTypes),
			Fields:  map[string]string{"type": fmt.Sprintf("would be type %d of a message that takes at most %d", p.MaxTypes+1, p.MaxTypes)},
		}
	}
	res.Created = status == "created"
	r.MessageID, r.UserID, r.Type = p.MessageID, p.UserID, p.Type
	r.CreatedAt, r.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
	for i, id := range removedIDs {
		res.Removed = append(res.Removed, messageapi.ReactionVersion{ID: id, Version: removedVersions[i]})
	}
	return res, nil
}

// DeleteReaction marks the reaction of p's (message, user, type) deleted,
// leaving a tombstone for the projection to fold. An unknown message or
// reaction is a not-found error.
func (s *ReactionStore) DeleteReaction(ctx context.Context, p messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	return scanDelete(s.db.pool.QueryRow(ctx, deleteReactionSQL, p.MessageID, p.UserID, p.Type, p.At))
}

// deleteReactionSQL deletes a live reaction and says, in the same
// statement, whether there was one and whether its message exists, so an
// unknown reaction is not an error that would fail a batch.
const deleteReactionSQL = `
	with d as (
		update reactions set deleted_at = $4, updated_at = $4, version = version + 1
		where message_id = $1 and user_id = $2 and type = $3 and deleted_at is null
		returning id::text, version
	)
	select (select id from d), (select version from d),
		exists (select from d) or exists (select from messages where id = $1)`

// scanDelete reads the row of deleteReactionSQL.
func scanDelete(row pgx.Row) (messageapi.DeleteReactionResult, error) {
	var id *string
	var version *int64
	var messageExists bool
	if err := row.Scan(&id, &version, &messageExists); err != nil {
		return messageapi.DeleteReactionResult{}, translate(err, "delete reaction")
	}
	switch {
	case !messageExists:
		return messageapi.DeleteReactionResult{}, messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	case id == nil:
		return messageapi.DeleteReactionResult{}, messageapi.Errorf(messageapi.ENOTFOUND, "reaction not found")
	}
	return messageapi.DeleteReactionResult{ReactionID: *id, Version: *version}, nil
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

// OwnReactions returns the live reactions of one user on each of the
// given messages, newest first per message: one lookup of the
// (message_id, user_id, type) key per message.
func (s *ReactionStore) OwnReactions(ctx context.Context, messageIDs []string, userID string) (map[string][]messageapi.Reaction, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, `
		select `+reactionColumns+`
		from reactions r
		where r.message_id = any($1::uuid[]) and r.user_id = $2 and r.deleted_at is null
		order by r.message_id, r.created_at desc, r.id desc`, messageIDs, userID)
	if err != nil {
		return nil, translate(err, "own reactions")
	}
	list, err := pgx.CollectRows(rows, scanReaction)
	if err != nil {
		return nil, translate(err, "own reactions")
	}
	own := make(map[string][]messageapi.Reaction, len(messageIDs))
	for _, id := range messageIDs {
		own[id] = []messageapi.Reaction{}
	}
	for _, r := range list {
		own[r.MessageID] = append(own[r.MessageID], r)
	}
	return own, nil
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
