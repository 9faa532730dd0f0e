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
			insert into messages (id, channel_id, text, user_id, created_at)
			values ($1, $5, $2, $3, $4)
			on conflict (id) do nothing
			returning id
		), view as (
			insert into message_views (message_id) select id from ins
		)
		select exists (select 1 from ins)`,
		m.ID, m.Text, m.UserID, m.CreatedAt.Time, cmp.Or(m.ChannelID, messageapi.DefaultChannel),
	).Scan(&created)
	return created, translate(err, "create message")
}

// viewColumns selects what scanView reads, from messages m joined to
// message_views v.
const viewColumns = `m.id::text, m.channel_id, m.text, m.user_id, m.created_at, m.updated_at, m.deleted_at,
	v.reaction_count, v.reaction_groups, v.latest_reactions, v.version`

// foldViewColumns is viewColumns without the latest reactions, for a
// rebuild, which reads them again from reactions rather than decode what
// it replaces: an empty list in their place.
const foldViewColumns = `m.id::text, m.channel_id, m.text, m.user_id, m.created_at, m.updated_at, m.deleted_at,
	v.reaction_count, v.reaction_groups, '[]'::jsonb, v.version`

func scanView(row pgx.Row) (messageapi.MessageView, error) {
	var v messageapi.MessageView
	var created time.Time
	var updated, deleted *time.Time
	var groups storedGroups
	var latest storedReactions
	err := row.Scan(&v.ID, &v.ChannelID, &v.Text, &v.UserID, &created, &updated, &deleted, &v.ReactionCount, &groups, &latest, &v.Version)
	v.CreatedAt = messageapi.NewTime(created)
	v.UpdatedAt, v.DeletedAt = optionalTime(updated), optionalTime(deleted)
	v.SetGroups(groups)
	v.Reactions = latest.of(v.ID)
	return v, err
}

func optionalTime(t *time.Time) *messageapi.Time {
	if t == nil {
		return nil
	}
	at := messageapi.NewTime(*t)
	return &at
}

// EditMessage sets the text of a message that is not deleted, and raises
// its view's version in the same transaction, so that caches take the
// returned view over any they hold. It returns a not-found error for an
// unknown or deleted message, and a permission error when c.UserID is not
// the author and c.AnyAuthor is not set.
//
// The message row is locked for no-key update, which reaction writes
// (for key share) do not wait for.
func (s *MessageStore) EditMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error) {
	return s.change(ctx, c, "edit message", false, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`update messages set text = $2, updated_at = $3 where id = $1`, c.ID, c.Text, c.At)
		b.Queue(`update message_views set version = version + 1 where message_id = $1`, c.ID)
		return tx.SendBatch(ctx, b).Close()
	})
}

// DeleteMessage makes a message a tombstone: it empties its text, sets
// deleted_at, removes its reactions and empties its view, in one
// transaction. It returns the tombstone, also when the message was deleted
// already; errors as EditMessage.
//
// The message row is locked for update, so the delete waits for the
// reaction writes in progress on the message, and every later one waits
// for the delete and then finds the message deleted (put_reaction). The
// reactions are locked in id order before the view, as every fold and
// rebuild locks them, so none of those can deadlock with a delete. Once
// the reactions are gone and the view is empty, no fold, sweep or rebuild
// has anything of the message left to count, whatever stream entries of
// its reactions are still to come.
func (s *MessageStore) DeleteMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error) {
	return s.change(ctx, c, "delete message", true, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`select from reactions where message_id = $1 order by id for update`, c.ID)
		b.Queue(`select from message_views where message_id = $1 for update`, c.ID)
		b.Queue(`
			with gone as (delete from reactions where message_id = $1 returning id)
			delete from reaction_changes c using gone where c.reaction_id = gone.id`, c.ID)
		b.Queue(`update messages set text = '', updated_at = $2, deleted_at = $2 where id = $1`, c.ID, c.At)
		b.Queue(`
			update message_views set reaction_count = 0, reaction_groups = '{}', latest_reactions = '[]', version = version + 1
			where message_id = $1`, c.ID)
		return tx.SendBatch(ctx, b).Close()
	})
}

// change runs an edit or, when deleting, a delete: it locks the message,
// checks that it exists, is not deleted (a delete of a tombstone changes
// nothing) and may be changed by c.UserID, runs write, which must raise
// the view's version with its own write of the view, and returns the view
// as the transaction leaves it.
func (s *MessageStore) change(ctx context.Context, c messageapi.MessageChange, op string, deleting bool, write func(pgx.Tx) error) (messageapi.MessageView, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	lock := "for no key update"
	if deleting {
		lock = "for update"
	}
	var v messageapi.MessageView
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var author string
		var deleted bool
		err := tx.QueryRow(ctx, `select user_id, deleted_at is not null from messages where id = $1 `+lock, c.ID).Scan(&author, &deleted)
		switch {
		case isNoRows(err):
			return messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
		case err != nil:
			return err
		case !c.AnyAuthor && author != c.UserID:
			return messageapi.Errorf(messageapi.EPERMISSION, "only the author of a message may change it")
		case deleted && deleting:
			// Deleting a tombstone again: nothing to do.
		case deleted:
			return messageapi.Errorf(messageapi.ENOTFOUND, "message not found")
		default:
			if err := write(tx); err != nil {
				return err
			}
		}
		v, err = scanView(tx.QueryRow(ctx, `
			select `+viewColumns+`
			from messages m join message_views v on v.message_id = m.id
			where m.id = $1`, c.ID))
		return err
	})
	return v, translate(err, op)
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

// ListMessages returns messages of one channel newest first. Each form
// picks the ids of its page with one range scan of the (channel_id, id)
// index (an index-only scan for a page number, which skips its offset in
// the index alone), then
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
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages where channel_id = $3 and id `+op+` $1 order by channel_id desc, id desc limit $2`),
			cmp.Or(p.BeforeID, p.AtOrBeforeID), p.Limit, p.Channel())
	case p.AfterID != "":
		// The next messages toward the present: a forward range scan of the
		// primary key, listed newest first like every page.
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages where channel_id = $3 and id > $1 order by channel_id, id limit $2`),
			p.AfterID, p.Limit, p.Channel())
	default:
		// The bound on id, which every id meets, makes the scan a range of
		// the (channel_id, id) index like the cursor forms: without
		// statistics, the planner took the equality alone for a few rows
		// and read the whole channel by a bitmap scan to sort it.
		rows, err = s.db.pool.Query(ctx, pageSQL(`select id from messages
			where channel_id = $3 and id <= 'ffffffff-ffff-ffff-ffff-ffffffffffff'
			order by channel_id desc, id desc offset $1 limit $2`),
			p.Offset, p.Limit, p.Channel())
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
