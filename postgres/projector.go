package postgres

import (
	"context"
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

// stateColumns selects what scanState reads from reactions r left joined
// to reaction_changes c: a reaction's current state and what the views
// count of it. Without a pending change they count its current state,
// which FoldReactions reads as a projected version equal to the version;
// with one they count its base score, and the version 0 that no row has
// marks the change pending.
const stateColumns = `r.id::text, r.message_id::text, r.user_id, r.type, r.score, r.deleted_at is not null,
	r.created_at, r.updated_at, r.version,
	case when c.reaction_id is null then r.version else 0 end,
	case when c.reaction_id is not null then c.base_score when r.deleted_at is null then r.score else 0 end`

// statesFrom is the from clause of stateColumns.
const statesFrom = `reactions r left join reaction_changes c on c.reaction_id = r.id`

func scanState(row pgx.CollectableRow) (messageapi.ReactionState, error) {
	var r messageapi.ReactionState
	err := row.Scan(&r.ID, &r.MessageID, &r.UserID, &r.Type, &r.Score, &r.Deleted, &r.CreatedAt, &r.UpdatedAt,
		&r.Version, &r.ProjectedVersion, &r.ProjectedScore)
	return r, err
}

// pending reports whether the views do not count r's current state yet.
func pending(r messageapi.ReactionState) bool {
	return r.Version != r.ProjectedVersion
}

// lockStates locks the reaction rows that lockSQL selects (their ids, in
// id order) and then reads the states of the rows that whereSQL selects
// from statesFrom (the same rows, or more), in one round trip, and
// returns the states of the rows it locked, in id order.
//
// The states are read by a second statement, once the rows are locked: a
// write of a reaction records its change (the trigger of migration 011)
// in the transaction that changes the row, so a read under the row's lock
// sees both or neither. One statement that locked and read at once would,
// after a write committed during it, see the row's new state (a locked
// row is re-read) beside its snapshot's reaction_changes, without the
// write's record, and count the change as folded.
func lockStates(ctx context.Context, tx pgx.Tx, lockSQL string, lockArgs []any, whereSQL string, whereArgs ...any) (locked, all []messageapi.ReactionState, err error) {
	var ids []string
	b := &pgx.Batch{}
	b.Queue(lockSQL, lockArgs...).Query(func(rows pgx.Rows) (err error) {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	b.Queue(`select `+stateColumns+` from `+statesFrom+` where `+whereSQL+` order by r.id`, whereArgs...).Query(func(rows pgx.Rows) (err error) {
		all, err = pgx.CollectRows(rows, scanState)
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("lock reactions: %w", err)
	}
	// Both lists are in id order; every locked row existed when the states
	// were read, since the lock keeps it.
	for _, r := range all {
		if len(ids) > 0 && ids[0] == r.ID {
			locked, ids = append(locked, r), ids[1:]
		}
	}
	return locked, all, nil
}

// Project folds the pending changes of the given reactions into their
// messages' views, in one transaction. Reactions that are gone or have no
// pending change need nothing (but the purge of a tombstone); those held
// by another transaction are skipped.
func (p *Projector) Project(ctx context.Context, reactionIDs []string) (messageapi.FoldResult, error) {
	if len(reactionIDs) == 0 {
		return messageapi.FoldResult{}, nil
	}
	ids := slices.Clone(reactionIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return p.fold(ctx, "project", func(context.Context, pgx.Tx) ([]string, error) { return ids, nil }, true)
}

// Sweep folds up to p.Limit reactions whose pending change, recorded in
// reaction_changes, is at least p.MinAge old: changes whose stream entry
// was lost (a Redis restart, trimming, a failed append) or dead-lettered.
// It skips rows another transaction holds. A record whose reaction is gone
// is settled: a reaction id is never used again, and the statements that
// remove reactions settle their records themselves, so it is only left
// behind by hand.
func (p *Projector) Sweep(ctx context.Context, params messageapi.SweepParams) (messageapi.FoldResult, error) {
	qctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	if _, err := p.db.pool.Exec(qctx, `
		delete from reaction_changes c
		where c.reaction_id in (
			select reaction_id from reaction_changes
			where changed_at <= now() - $1::interval
			order by changed_at
			limit $2)
			and not exists (select from reactions r where r.id = c.reaction_id)`, params.MinAge, params.Limit); err != nil {
		return messageapi.FoldResult{}, translate(err, "sweep")
	}
	// The oldest records whose reactions no one holds, locked in the
	// fold's own transaction: rows a frozen transaction keeps locked do
	// not stop the sweep of the others.
	return p.fold(ctx, "sweep", func(ctx context.Context, tx pgx.Tx) ([]string, error) {
		rows, err := tx.Query(ctx, `
			select r.id::text
			from reaction_changes c join reactions r on r.id = c.reaction_id
			where c.changed_at <= now() - $1::interval
			order by c.changed_at
			limit $2
			for update of r skip locked`, params.MinAge, params.Limit)
		if err != nil {
			return nil, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		slices.Sort(ids)
		return ids, err
	}, false)
}

// fold folds, in one transaction, the pending changes of the reactions
// whose ids (sorted) pick returns in it, those it can lock without
// waiting. With reportSkipped, those with a pending change that another
// transaction holds are reported skipped.
func (p *Projector) fold(ctx context.Context, op string, pick func(context.Context, pgx.Tx) ([]string, error), reportSkipped bool) (messageapi.FoldResult, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var res messageapi.FoldResult
	err := pgx.BeginFunc(ctx, p.db.pool, func(tx pgx.Tx) error {
		res = messageapi.FoldResult{}
		ids, err := pick(ctx, tx)
		if err != nil || len(ids) == 0 {
			return err
		}
		// Only rows with a recorded change are locked: a second delivery
		// of a folded change costs a probe, not a row lock (a write to
		// the row's page). A change committed after this statement began
		// is not seen here; its own stream entry, or the sweeper, brings
		// it.
		states, all, err := lockStates(ctx, tx, `
			select r.id::text from reactions r
			where r.id = any($1::uuid[]) and exists (select from reaction_changes c where c.reaction_id = r.id)
			order by r.id
			for update of r skip locked`, []any{ids}, `r.id = any($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		if reportSkipped && len(states) < len(all) {
			res.Skipped = heldElsewhere(all, states)
		}
		if len(states) == 0 {
			return nil
		}
		views, err := lockViews(ctx, tx, messageapi.FoldReactions(states).Messages, true, true)
		if err != nil {
			return err
		}
		// Pending changes whose view another transaction holds wait for a
		// later fold.
		locked := make(map[string]bool, len(views))
		for _, v := range views {
			locked[v.ID] = true
		}
		kept := states[:0]
		for _, r := range states {
			switch {
			case !pending(r):
				kept = append(kept, r)
			case locked[r.MessageID]:
				kept = append(kept, r)
				res.Folded++
			default:
				res.Skipped = append(res.Skipped, r.ID)
			}
		}
		f := messageapi.FoldReactions(kept)
		res.Changes = f.Changes
		res.Views, err = writeFold(ctx, tx, f, views, false, kept)
		return err
	})
	if err != nil {
		return messageapi.FoldResult{}, translate(err, op)
	}
	return res, nil
}

// heldElsewhere returns the reactions of all, read after the locking
// statement, that have a pending change but are not among the locked
// states: another transaction holds them.
func heldElsewhere(all, locked []messageapi.ReactionState) []string {
	var held []string
	for _, r := range all {
		if len(locked) > 0 && locked[0].ID == r.ID {
			locked = locked[1:]
			continue
		}
		if pending(r) {
			held = append(held, r.ID)
		}
	}
	return held
}

// stateIDs returns the ids of states.
func stateIDs(states []messageapi.ReactionState) []string {
	ids := make([]string, len(states))
	for i, r := range states {
		ids[i] = r.ID
	}
	return ids
}

// writeFold applies f inside tx to views, the locked views of the messages
// it touches (more are ignored): it applies the deltas (to emptied views
// when rebuild is set), brings their latest reactions and group times up
// to date, and writes the views, the purges and the settling of states in
// one round trip. states are the reaction rows, locked by tx, whose
// current state the views now count: their records leave
// reaction_changes. Nothing else of reactions is written.
//
// A fold moves the latest reactions and the group times by the states it
// holds (MessageView.FoldLatest, FoldGroupTimes), and reads reactions only
// where those cannot tell: a delete from a full list of latest reactions,
// the times of a group whose counted reaction changed or left. A rebuild
// reads them all. It returns the views it wrote.
func writeFold(ctx context.Context, tx pgx.Tx, f messageapi.Fold, locked []messageapi.MessageView, rebuild bool, states []messageapi.ReactionState) ([]messageapi.MessageView, error) {
	views := make([]messageapi.MessageView, 0, len(f.Messages))
	for _, v := range locked {
		if _, touched := slices.BinarySearch(f.Messages, v.ID); touched {
			views = append(views, v)
		}
	}
	var latestOf []int
	times := f.Touched
	if rebuild {
		latestOf = make([]int, len(views))
		for i := range views {
			latestOf[i] = i
		}
	} else {
		times = nil
	}
	byMessage := make(map[string][]messageapi.ReactionState, len(views))
	if !rebuild {
		for _, r := range states {
			byMessage[r.MessageID] = append(byMessage[r.MessageID], r)
		}
	}
	for i := range views {
		if rebuild {
			views[i].ResetCounts()
		}
		views[i].Apply(f.Deltas)
		views[i].Version++
		if rebuild {
			continue
		}
		own := byMessage[views[i].ID]
		if views[i].FoldLatest(own) {
			latestOf = append(latestOf, i)
		}
		for _, typ := range views[i].FoldGroupTimes(own) {
			times = append(times, messageapi.ReactionKey{MessageID: views[i].ID, Type: typ})
		}
	}
	if err := reread(ctx, tx, views, latestOf, times); err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	if err := queueViewUpdates(b, views); err != nil {
		return nil, err
	}
	if len(f.Purged) > 0 {
		b.Queue(`delete from reactions where id = any($1::uuid[])`, f.Purged)
	}
	if len(states) > 0 {
		b.Queue(`delete from reaction_changes where reaction_id = any($1::uuid[])`, stateIDs(states))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write views: %w", err)
	}
	return views, nil
}

// lockViews locks and reads the views of messageIDs, which must be sorted,
// with their latest reactions when withLatest is set (a rebuild reads them
// again, so it need not decode them); with skipLocked it leaves out the
// views another transaction holds.
//
// The views are read by a second statement, after the first has locked
// them: an edit or a delete changes the message and raises its view's
// version in one transaction, so a read under the lock sees both or
// neither. One statement that locked and read at once would, after
// waiting for such a change, see the view's new version (a locked row is
// re-read) beside the message's old text, and a cache would keep that
// old text under the newer version.
func lockViews(ctx context.Context, tx pgx.Tx, messageIDs []string, skipLocked, withLatest bool) ([]messageapi.MessageView, error) {
	columns := foldViewColumns
	if withLatest {
		columns = viewColumns
	}
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
		select `+columns+`
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

// reread reads what a fold could not move by the states it holds, in one
// round trip: the latest reactions of views[latestOf] (the newest ten of
// each type, merged, per message), and the first and latest reaction
// times of the groups touched (two index probes a group, each an ordered
// scan of one row: min and max in a lateral subquery would read every
// reaction of the group). It runs after the views are locked, so a later
// fold of the same message reads after this one commits.
func reread(ctx context.Context, tx pgx.Tx, views []messageapi.MessageView, latestOf []int, touched []messageapi.ReactionKey) error {
	if len(latestOf) == 0 && len(touched) == 0 {
		return nil
	}
	ids := make([]string, len(latestOf))
	byID := make(map[string]*messageapi.MessageView, len(views))
	for i := range views {
		byID[views[i].ID] = &views[i]
	}
	for k, i := range latestOf {
		ids[k] = views[i].ID
		views[i].Reactions = []messageapi.Reaction{}
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

// queueViewUpdates queues one statement that writes every view, its JSON
// in the compact forms of view_codec.go.
func queueViewUpdates(b *pgx.Batch, views []messageapi.MessageView) error {
	n := len(views)
	ids, counts, versions := make([]string, n), make([]int64, n), make([]int64, n)
	groups, latest := make([]string, n), make([]string, n)
	for i, v := range views {
		ids[i], counts[i], versions[i] = v.ID, v.ReactionCount, v.Version
		l, err := encodeReactions(v.Reactions)
		if err != nil {
			return fmt.Errorf("encode view %s: %w", v.ID, err)
		}
		groups[i], latest[i] = string(encodeGroups(v.ReactionGroups)), string(l)
	}
	b.Queue(`
		update message_views v set
			reaction_count = u.count, reaction_groups = u.groups::jsonb, latest_reactions = u.latest::jsonb, version = u.version
		from unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])
			as u(id, count, groups, latest, version)
		where v.message_id = u.id`, ids, counts, groups, latest, versions)
	return nil
}

// Lag returns how long the oldest unprojected change has waited: now minus
// its commit time, or 0 when everything is projected. It reads one entry
// of reaction_changes_changed_at_idx.
func (p *Projector) Lag(ctx context.Context) (time.Duration, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var seconds float64
	err := p.db.pool.QueryRow(ctx, `
		select coalesce(extract(epoch from now() - min(changed_at)), 0)::float8
		from reaction_changes`).Scan(&seconds)
	if err != nil {
		return 0, translate(err, "projection lag")
	}
	return time.Duration(max(seconds, 0) * float64(time.Second)), nil
}
