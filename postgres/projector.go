package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// Projector folds committed reaction changes into message_views.
//
// The arithmetic is messageapi.FoldReactions; this type supplies what it
// needs under the right locks and writes what it decides. Every fold runs
// in one transaction: it locks the changed reaction rows, reads their
// current and projected states, applies the difference to the views and
// records the current state as projected. So a second delivery of a change
// finds nothing left to apply, a delivery that overtakes another applies
// both changes at once, and a lost delivery is found by Sweep.
//
// No fold waits for a lock: it skips reaction rows and views that another
// transaction holds and reports those reactions as skipped, to be folded
// again shortly. A worker frozen inside a fold (its transaction ended by
// the server after the idle-in-transaction timeout) therefore stops no
// other worker, and no fold can deadlock. Rebuilds (reconcile) do wait,
// and lock reaction rows in id order, then views in message order, like
// folds, never a reaction after a view. API writes lock reaction rows of
// one message only and never a view.
type Projector struct {
	db *DB
}

// NewProjector returns a Projector on db.
func NewProjector(db *DB) *Projector {
	return &Projector{db: db}
}

// stateColumns selects what scanState reads from reactions.
const stateColumns = `id::text, message_id::text, user_id, type, score, deleted_at is not null,
	created_at, updated_at, version, projected_version, projected_score`

func scanState(row pgx.CollectableRow) (messageapi.ReactionState, error) {
	var r messageapi.ReactionState
	err := row.Scan(&r.ID, &r.MessageID, &r.UserID, &r.Type, &r.Score, &r.Deleted, &r.CreatedAt, &r.UpdatedAt,
		&r.Version, &r.ProjectedVersion, &r.ProjectedScore)
	return r, err
}

// lockStates runs a locking select of stateColumns and returns the states.
func lockStates(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]messageapi.ReactionState, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("lock reactions: %w", err)
	}
	states, err := pgx.CollectRows(rows, scanState)
	if err != nil {
		return nil, fmt.Errorf("lock reactions: %w", err)
	}
	return states, nil
}

// Project folds the unprojected changes of the given reactions into their
// messages' views, in one transaction. Reactions that are gone or already
// projected need nothing; those held by another transaction are skipped.
func (p *Projector) Project(ctx context.Context, reactionIDs []string) (messageapi.FoldResult, error) {
	if len(reactionIDs) == 0 {
		return messageapi.FoldResult{}, nil
	}
	ids := slices.Clone(reactionIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return p.fold(ctx, "project", ids, `
		select `+stateColumns+`
		from reactions
		where id = any($1::uuid[]) and version <> projected_version
		order by id
		for update skip locked`, ids)
}

// Sweep folds up to p.Limit reactions whose change is at least p.MinAge
// old and still unprojected: changes whose stream entry was lost (a Redis
// restart, trimming, a failed append) or dead-lettered. It skips rows
// another transaction holds.
func (p *Projector) Sweep(ctx context.Context, params messageapi.SweepParams) (messageapi.FoldResult, error) {
	return p.fold(ctx, "sweep", nil, `
		select `+stateColumns+`
		from reactions
		where version <> projected_version and updated_at <= now() - $1::interval
		order by updated_at
		limit $2
		for update skip locked`, params.MinAge, params.Limit)
}

// fold folds the rows that selectSQL locks (skipping locked ones), in one
// transaction. asked, when set, are the reactions the caller wants folded:
// those still unprojected that the select skipped are reported skipped.
func (p *Projector) fold(ctx context.Context, op string, asked []string, selectSQL string, args ...any) (messageapi.FoldResult, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var res messageapi.FoldResult
	err := pgx.BeginFunc(ctx, p.db.pool, func(tx pgx.Tx) error {
		res = messageapi.FoldResult{}
		states, err := lockStates(ctx, tx, selectSQL, args...)
		if err != nil {
			return err
		}
		if len(states) < len(asked) {
			if res.Skipped, err = heldElsewhere(ctx, tx, asked, states); err != nil {
				return err
			}
		}
		if len(states) == 0 {
			return nil
		}
		views, err := lockViews(ctx, tx, messageapi.FoldReactions(states).Messages, true)
		if err != nil {
			return err
		}
		// Rows whose view another transaction holds wait for a later fold.
		locked := make(map[string]bool, len(views))
		for _, v := range views {
			locked[v.ID] = true
		}
		kept := states[:0]
		for _, r := range states {
			if locked[r.MessageID] {
				kept = append(kept, r)
			} else {
				res.Skipped = append(res.Skipped, r.ID)
			}
		}
		f := messageapi.FoldReactions(kept)
		res.Folded, res.Changes = len(kept), f.Changes
		res.Views, err = writeFold(ctx, tx, f, views, false)
		return err
	})
	if err != nil {
		return messageapi.FoldResult{}, translate(err, op)
	}
	return res, nil
}

// heldElsewhere returns the reactions among asked that need folding but
// were not among the locked states: another transaction holds them.
func heldElsewhere(ctx context.Context, tx pgx.Tx, asked []string, locked []messageapi.ReactionState) ([]string, error) {
	lockedIDs := make([]string, len(locked))
	for i, r := range locked {
		lockedIDs[i] = r.ID
	}
	rows, err := tx.Query(ctx, `
		select id::text from reactions
		where id = any($1::uuid[]) and version <> projected_version and not (id = any($2::uuid[]))`, asked, lockedIDs)
	if err != nil {
		return nil, fmt.Errorf("find held reactions: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find held reactions: %w", err)
	}
	return held, nil
}

// writeFold applies f inside tx to views, the locked views of the messages
// it touches (more are ignored): it applies the deltas (to emptied views
// when rebuild is set), re-reads their latest reactions, and writes the
// views, the projected rows and the purges in one round trip. It returns
// the views it wrote.
func writeFold(ctx context.Context, tx pgx.Tx, f messageapi.Fold, locked []messageapi.MessageView, rebuild bool) ([]messageapi.MessageView, error) {
	views := make([]messageapi.MessageView, 0, len(f.Messages))
	for _, v := range locked {
		if _, touched := slices.BinarySearch(f.Messages, v.ID); touched {
			views = append(views, v)
		}
	}
	for i := range views {
		if rebuild {
			views[i].ResetCounts()
		}
		views[i].Apply(f.Deltas)
		views[i].Version++
	}
	if err := reread(ctx, tx, views, f.Touched); err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	if err := queueViewUpdates(b, views); err != nil {
		return nil, err
	}
	if len(f.Projected) > 0 {
		ids, versions, scores := make([]string, len(f.Projected)), make([]int64, len(f.Projected)), make([]int32, len(f.Projected))
		for i, r := range f.Projected {
			ids[i], versions[i], scores[i] = r.ID, r.Version, int32(r.Score)
		}
		b.Queue(`
			update reactions r set projected_version = u.version, projected_score = u.score
			from unnest($1::uuid[], $2::bigint[], $3::int[]) as u(id, version, score)
			where r.id = u.id`, ids, versions, scores)
	}
	if len(f.Purged) > 0 {
		b.Queue(`delete from reactions where id = any($1::uuid[])`, f.Purged)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write views: %w", err)
	}
	return views, nil
}

// lockViews locks and reads the views of messageIDs, which must be sorted;
// with skipLocked it leaves out the views another transaction holds.
//
// The views are read by a second statement, after the first has locked
// them: an edit or a delete changes the message and raises its view's
// version in one transaction, so a read under the lock sees both or
// neither. One statement that locked and read at once would, after
// waiting for such a change, see the view's new version (a locked row is
// re-read) beside the message's old text, and a cache would keep that
// old text under the newer version.
func lockViews(ctx context.Context, tx pgx.Tx, messageIDs []string, skipLocked bool) ([]messageapi.MessageView, error) {
	lock := "for update"
	if skipLocked {
		lock += " skip locked"
	}
	var locked []string
	var views []messageapi.MessageView
	b := &pgx.Batch{}
	b.Queue(`
		select message_id::text from message_views
		where message_id = any($1::uuid[])
		order by message_id
		`+lock, messageIDs).Query(func(rows pgx.Rows) (err error) {
		locked, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	b.Queue(`
		select `+viewColumns+`
		from message_views v join messages m on m.id = v.message_id
		where v.message_id = any($1::uuid[])
		order by v.message_id`, messageIDs).Query(func(rows pgx.Rows) (err error) {
		views, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (messageapi.MessageView, error) {
			return scanView(row)
		})
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("lock views: %w", err)
	}
	// Both lists are in message order, and locked is a subset of views.
	kept := views[:0]
	for _, v := range views {
		if len(locked) > 0 && locked[0] == v.ID {
			kept, locked = append(kept, v), locked[1:]
		}
	}
	return kept, nil
}

// reread sets what a view holds that is not a delta, in one round trip:
// each view's latest reactions (the newest ten of each type, merged, per
// message: cheaper than patching the list and always right after a
// delete), and
// the first and latest reaction times of the touched groups (two index
// probes a group, each an ordered scan of one row: min and max in a
// lateral subquery would read every reaction of the group; they are
// re-read since deleting the first reaction of a type moves its
// first_reaction_at to a reaction no change names). It runs after the
// views are locked, so a later fold of the same message re-reads after
// this one commits.
func reread(ctx context.Context, tx pgx.Tx, views []messageapi.MessageView, touched []messageapi.ReactionKey) error {
	ids := make([]string, len(views))
	byID := make(map[string]*messageapi.MessageView, len(views))
	for i := range views {
		ids[i] = views[i].ID
		views[i].Reactions = []messageapi.Reaction{}
		byID[views[i].ID] = &views[i]
	}
	var keyIDs, keyTypes []string
	for _, k := range touched {
		if byID[k.MessageID] != nil {
			keyIDs, keyTypes = append(keyIDs, k.MessageID), append(keyTypes, k.Type)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`
		select `+reactionColumns+`
		from unnest($1::uuid[]) as m(id)
		cross join lateral (`+latestReactionsSQL("m.id", "", "$2")+`) r
		order by r.message_id, r.created_at desc, r.id desc`, ids, messageapi.InlineReactions).Query(func(rows pgx.Rows) error {
		latest, err := pgx.CollectRows(rows, scanReaction)
		if err != nil {
			return fmt.Errorf("read latest reactions: %w", err)
		}
		for _, r := range latest {
			v := byID[r.MessageID]
			v.Reactions = append(v.Reactions, r)
		}
		return nil
	})
	b.Queue(`
		select k.message_id::text, k.type, t.first, t.last
		from unnest($1::uuid[], $2::text[]) as k(message_id, type)
		cross join lateral (
			select
				(select r.created_at from reactions r
				 where r.message_id = k.message_id and r.type = k.type and r.deleted_at is null
				 order by r.created_at, r.id limit 1) as first,
				(select r.created_at from reactions r
				 where r.message_id = k.message_id and r.type = k.type and r.deleted_at is null
				 order by r.created_at desc, r.id desc limit 1) as last
		) t`, keyIDs, keyTypes).Query(func(rows pgx.Rows) error {
		var id, typ string
		var first, last *time.Time // null: the group has no live reaction left
		_, err := pgx.ForEachRow(rows, []any{&id, &typ, &first, &last}, func() error {
			if first != nil && last != nil {
				byID[id].SetGroupTimes(typ, *first, *last)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read reaction group times: %w", err)
		}
		return nil
	})
	return tx.SendBatch(ctx, b).Close()
}

// queueViewUpdates queues one statement that writes every view.
func queueViewUpdates(b *pgx.Batch, views []messageapi.MessageView) error {
	n := len(views)
	ids, counts, versions := make([]string, n), make([]int64, n), make([]int64, n)
	perType, scores, groups, latest := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, v := range views {
		ids[i], counts[i], versions[i] = v.ID, v.ReactionCount, v.Version
		c, err1 := json.Marshal(v.ReactionCounts)
		s, err2 := json.Marshal(v.ReactionScores)
		g, err3 := json.Marshal(v.ReactionGroups)
		l, err4 := json.Marshal(v.Reactions)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return fmt.Errorf("encode view %s: %w", v.ID, err)
		}
		perType[i], scores[i], groups[i], latest[i] = string(c), string(s), string(g), string(l)
	}
	b.Queue(`
		update message_views v set
			reaction_count = u.count, reaction_counts = u.counts::jsonb, reaction_scores = u.scores::jsonb,
			reaction_groups = u.groups::jsonb, latest_reactions = u.latest::jsonb, version = u.version
		from unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
			as u(id, count, counts, scores, groups, latest, version)
		where v.message_id = u.id`, ids, counts, perType, scores, groups, latest, versions)
	return nil
}

// Lag returns how long the oldest unprojected change has waited: now minus
// its commit time, or 0 when everything is projected. It reads the small
// partial index reactions_unprojected_idx.
func (p *Projector) Lag(ctx context.Context) (time.Duration, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var seconds float64
	err := p.db.pool.QueryRow(ctx, `
		select coalesce(extract(epoch from now() - min(updated_at)), 0)::float8
		from reactions where version <> projected_version`).Scan(&seconds)
	if err != nil {
		return 0, translate(err, "projection lag")
	}
	return time.Duration(max(seconds, 0) * float64(time.Second)), nil
}
