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
// stored a row, but for the message's channel (which chooses the
// reaction's stream partition), set when the message exists.
const putReactionSQL = `
	select status, coalesce(id::text, ''), coalesce(score, 0), coalesce(created_at, 'epoch'),
		coalesce(updated_at, 'epoch'), coalesce(version, 0), removed_ids::text[], removed_versions,
		coalesce(channel_id, '')
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
	err := row.Scan(&status, &r.ID, &r.Score, &created, &updated, &res.Version, &removedIDs, &removedVersions, &res.ChannelID)
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
// statement, whether there was one and the channel of its message, null
// when the message does not exist, so an unknown reaction is not an error
// that would fail a batch.
const deleteReactionSQL = `
	with d as (
		update reactions set deleted_at = $4, updated_at = $4, version = version + 1
		where message_id = $1 and user_id = $2 and type = $3 and deleted_at is null
		returning id::text, version
	)
	select (select id from d), (select version from d), (select channel_id from messages where id = $1)`

// scanDelete reads the row of deleteReactionSQL.
func scanDelete(row pgx.Row) (messageapi.DeleteReactionResult, error) {
	var id, channel *string
	var version *int64
	if err := row.Scan(&id, &version, &channel); err != nil {
		return messageapi.DeleteReactionResult{}, translate(err, "delete reaction")
	}
	switch {
	case channel == nil:
		return messageapi.DeleteReactionResult{}, messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	case id == nil:
		return messageapi.DeleteReactionResult{}, messageapi.Errorf(messageapi.ENOTFOUND, "reaction not found")
	}
	return messageapi.DeleteReactionResult{ReactionID: *id, Version: *version, ChannelID: *channel}, nil
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

// ListReactions returns a message's live reactions, newest first, from
// reactions_message_type_latest_idx: a range scan of one type when r
// filters by type, else a merge of the newest of each type
// (latestReactionsSQL). A filter by user probes the (message_id, user_id,
// type) key instead (userReactionsSQL). An unknown message is a not-found
// error.
func (s *ReactionStore) ListReactions(ctx context.Context, r messageapi.ReactionRange) ([]messageapi.Reaction, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	args := []any{r.MessageID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var where strings.Builder
	if r.BeforeID != "" {
		where.WriteString(" and (r.created_at, r.id) < (" + arg(r.BeforeCreatedAt) + ", " + arg(r.BeforeID) + "::uuid)")
	}
	var sql string
	switch {
	case r.UserID != "":
		if r.Type != "" {
			where.WriteString(" and r.type = " + arg(r.Type))
		}
		sql = `select ` + reactionColumns + ` from (` + userReactionsSQL("$1", arg(r.UserID)) + `) r
			where true` + where.String() + ` order by r.created_at desc, r.id desc limit ` + arg(r.Limit)
	case r.Type != "":
		// Qualified: a bare id would name the output column r.id::text,
		// whose order no index has, so every matching row would be read
		// and sorted.
		sql = `select ` + reactionColumns + ` from reactions r
			where r.message_id = $1 and r.type = ` + arg(r.Type) + ` and r.deleted_at is null` + where.String() + `
			order by r.created_at desc, r.id desc limit ` + arg(r.Limit)
	default:
		sql = latestReactionsSQL("$1", where.String(), arg(r.Limit))
	}
	rows, err := s.db.pool.Query(ctx, sql, args...)
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

// latestReactionsSQL selects the newest limit live reactions of the message
// named by message that pass the conditions and (on r, each starting with
// " and "), newest first. It reads reactions_message_type_latest_idx only:
// it finds the message's types with one probe each (a skip scan), takes the
// newest limit of each, and merges them, so it reads at most (types + 1) *
// (limit + 1) index entries however many reactions the message has. With one
// index that leads with (message_id, type), a filter by type can use no
// other, so no plan can scan a hot message's whole list to find a rare type.
func latestReactionsSQL(message, and, limit string) string {
	return `with recursive types(type) as (
			(select type from reactions where message_id = ` + message + ` and deleted_at is null order by type limit 1)
			union all
			select (select r.type from reactions r
				where r.message_id = ` + message + ` and r.deleted_at is null and r.type > types.type
				order by r.type limit 1)
			from types where types.type is not null
		)
		select ` + reactionColumns + ` from types cross join lateral (
			select * from reactions r
			where r.message_id = ` + message + ` and r.type = types.type and r.deleted_at is null` + and + `
			order by r.created_at desc, r.id desc limit ` + limit + `
		) r
		order by r.created_at desc, r.id desc limit ` + limit
}

// userReactionsSQL selects the live reactions of the user named by the
// parameter user on the message named by message: a probe of
// reactions_message_user_type_key, at most one row a type. The live-only
// filter sits outside an "offset 0" fence: inside, it would let the planner
// pick a partial index of the message's live reactions and filter the user
// out of all of them, which on a hot message reads tens of thousands of
// rows to find none (the plan guard test holds every read to this).
func userReactionsSQL(message, user string) string {
	return `select * from (select * from reactions where message_id = ` + message + ` and user_id = ` + user +
		` offset 0) mine where deleted_at is null`
}

// OwnReactions returns the live reactions of one user on each of the
// given messages, newest first per message: one probe of the
// (message_id, user_id, type) key per message, whatever the size of the
// messages.
func (s *ReactionStore) OwnReactions(ctx context.Context, messageIDs []string, userID string) (map[string][]messageapi.Reaction, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, `
		select `+reactionColumns+`
		from unnest($1::uuid[]) as m(id)
		cross join lateral (`+userReactionsSQL("m.id", "$2")+`) r
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

// MessageReactions calls each with up to limit live reactions of a
// message, in no particular order, and returns how many there were: all
// of them, for a copy of who reacted how (see pagecache.OwnReactions). It
// reads every live reaction of the message, so callers bound how often,
// and how many. The reaction each gets is reused for the next row, with
// new strings: keep what it holds, not the pointer.
func (s *ReactionStore) MessageReactions(ctx context.Context, messageID string, limit int, each func(*messageapi.Reaction)) (int, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, `
		select r.id::text, r.user_id, r.type, r.score, r.created_at, r.updated_at
		from reactions r
		where r.message_id = $1 and r.deleted_at is null
		limit $2`, messageID, limit)
	if err != nil {
		return 0, translate(err, "message reactions")
	}
	r := messageapi.Reaction{MessageID: messageID}
	var created, updated time.Time
	tag, err := pgx.ForEachRow(rows, []any{&r.ID, &r.UserID, &r.Type, &r.Score, &created, &updated}, func() error {
		r.CreatedAt, r.UpdatedAt = messageapi.NewTime(created), messageapi.NewTime(updated)
		each(&r)
		return nil
	})
	return int(tag.RowsAffected()), translate(err, "message reactions")
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
