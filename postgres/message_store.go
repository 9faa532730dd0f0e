package postgres

import (
	"cmp"
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// MessageStore stores messages and reads them with their projected views.
type MessageStore struct {
	db *DB
}

// NewMessageStore returns a MessageStore on db.
func NewMessageStore(db *DB) *MessageStore {
	return &MessageStore{db: db}
}

// CreateMessage inserts m together with its empty view, in one statement.
// When a message with m.ID exists already, it changes nothing and reports
// created == false; the caller decides whether that is an idempotent retry.
func (s *MessageStore) CreateMessage(ctx context.Context, m messageapi.Message) (created bool, err error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	err = s.db.pool.QueryRow(ctx, `
		with ins as (
			insert into messages (id, text, user_id, created_at)
			values ($1, $2, $3, $4)
			on conflict (id) do nothing
			returning id
		), view as (
			insert into message_views (message_id) select id from ins
		)
		select exists (select 1 from ins)`,
		m.ID, m.Text, m.UserID, m.CreatedAt.Time,
	).Scan(&created)
	return created, translate(err, "create message")
}

// viewColumns selects what scanView reads, from messages m joined to
// message_views v.
const viewColumns = `m.id::text, m.text, m.user_id, m.created_at,
	v.reaction_count, v.reaction_groups, v.latest_reactions, v.version`

func scanView(row pgx.Row) (messageapi.MessageView, error) {
	var v messageapi.MessageView
	var created time.Time
	var groups map[string]messageapi.ReactionGroup
	err := row.Scan(&v.ID, &v.Text, &v.UserID, &created, &v.ReactionCount, &groups, &v.Reactions, &v.Version)
	v.CreatedAt = messageapi.NewTime(created)
	v.SetGroups(groups)
	return v, err
}

// GetMessage returns the message with its view, or a not-found error.
func (s *MessageStore) GetMessage(ctx context.Context, id string) (messageapi.MessageView, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	v, err := scanView(s.db.pool.QueryRow(ctx, `
		select `+viewColumns+`
		from messages m join message_views v on v.message_id = m.id
		where m.id = $1`, id))
	if isNoRows(err) {
		return v, messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
	}
	return v, translate(err, "get message")
}

// ListMessages returns messages newest first. Each form picks the ids of
// its page with one range scan of the messages primary key (an index-only
// scan for a page number, which skips its offset in the index alone), then
// reads each message and its view by key: pageSQL.
func (s *MessageStore) ListMessages(ctx context.Context, p messageapi.MessageRange) ([]messageapi.MessageView, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	switch {
	case p.BeforeID != "" || p.AtOrBeforeID != "":
		op := "<"
		if p.BeforeID == "" {
			op = "<="
		}
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages where id `+op+` $1 order by id desc limit $2`),
			cmp.Or(p.BeforeID, p.AtOrBeforeID), p.Limit)
	case p.AfterID != "":
		// The next messages toward the present: a forward range scan of the
		// primary key, listed newest first like every page.
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages where id > $1 order by id limit $2`),
			p.AfterID, p.Limit)
	default:
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages order by id desc offset $1 limit $2`),
			p.Offset, p.Limit)
	}
	if err != nil {
		return nil, translate(err, "list messages")
	}
	views, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (messageapi.MessageView, error) {
		return scanView(row)
	})
	return views, translate(err, "list messages")
}

// pageSQL reads the messages whose ids the query ids selects, with their
// views, newest first. Each message and each view is one probe of its
// primary key, behind "offset 0" fences that keep the planner from turning
// the probes into a join that scans either table: a merge join on the
// views' key read every view older than the page (5,000 rows for a page in
// the middle of 10,000 messages), and a hash join reads a small table
// whole.
func pageSQL(ids string) string {
	return `select ` + viewColumns + `
		from (` + ids + `) p
		cross join lateral (select * from messages where id = p.id offset 0) m
		cross join lateral (select * from message_views where message_id = p.id offset 0) v
		order by p.id desc`
}
