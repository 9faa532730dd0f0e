package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// Projector folds committed reaction changes into message_views.
//
// Folding is exact however often, in whatever order and by however many
// workers a change is delivered: a reaction row records the version and
// score last folded (projected_version, projected_score), and a fold
// applies, under the row lock, the difference between the row's current
// state and that projected state, then records the current state as
// projected, all in one transaction. A second delivery finds nothing left
// to apply; a delivery that overtakes another applies both changes at
// once; a lost delivery is found by Sweep.
//
// Deadlock freedom: a fold locks its reaction rows in id order (or, in
// Sweep, skips locked ones), then its message_views rows in message id
// order, and never takes a reaction lock after a view lock. API writes
// lock a single reaction row.
type Projector struct {
	db *DB
}

// NewProjector returns a Projector on db.
func NewProjector(db *DB) *Projector {
	return &Projector{db: db}
}

// scanState reads a reactionState; the query selects id, message_id, type,
// score, deleted_at is not null, version and projected_score.
func scanState(row pgx.CollectableRow) (reactionState, error) {
	var r reactionState
	err := row.Scan(&r.id, &r.messageID, &r.reactionType, &r.score, &r.deleted, &r.version, &r.projectedScore)
	return r, err
}

// reactionState is a reaction row as a fold sees it.
type reactionState struct {
	id, messageID, reactionType string
	score                       int
	deleted                     bool
	version                     int64
	projectedScore              int
}

// Project folds the unprojected changes of the given reactions into their
// messages' views, in one transaction, and returns the views it changed.
// Ids of reactions that are gone or already projected are skipped.
func (p *Projector) Project(ctx context.Context, reactionIDs []string) ([]messageapi.MessageView, error) {
	if len(reactionIDs) == 0 {
		return nil, nil
	}
	ids := slices.Clone(reactionIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	_, views, err := p.fold(ctx, "project", `
		select id::text, message_id::text, type, score, deleted_at is not null, version, projected_score
		from reactions
		where id = any($1::uuid[]) and version <> projected_version
		order by id
		for update`, ids)
	return views, err
}

// Sweep folds up to limit reactions whose change is at least minAge old
// and still unprojected: changes whose stream entry was lost (a Redis
// restart, trimming, a failed append) or dead-lettered. It skips rows
// another fold holds, and returns how many it folded and the views it
// changed.
func (p *Projector) Sweep(ctx context.Context, minAge time.Duration, limit int) (int, []messageapi.MessageView, error) {
	return p.fold(ctx, "sweep", `
		select id::text, message_id::text, type, score, deleted_at is not null, version, projected_score
		from reactions
		where version <> projected_version and updated_at <= now() - $1::interval
		order by updated_at
		limit $2
		for update skip locked`, minAge, limit)
}

// fold folds the rows that selectSQL locks, in one transaction, and
// returns their number and the views it changed.
func (p *Projector) fold(ctx context.Context, op, selectSQL string, args ...any) (int, []messageapi.MessageView, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var n int
	var views []messageapi.MessageView
	err := pgx.BeginFunc(ctx, p.db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectSQL, args...)
		if err != nil {
			return err
		}
		changed, err := pgx.CollectRows(rows, scanState)
		if err != nil {
			return err
		}
		n = len(changed)
		if len(changed) == 0 {
			return nil
		}
		views, err = applyChanges(ctx, tx, changed, nil, nil)
		return err
	})
	if err != nil {
		return 0, nil, translate(err, op)
	}
	return n, views, nil
}

// applyChanges folds the locked rows into their views and records them as
// projected. Deltas are coalesced per message first, so a hot message is
// written once per batch, not once per reaction.
//
// The views of messages in rebuild are rebuilt from zero instead, from
// changed and kept: kept are rows of those messages that this transaction
// has not locked but another fold has already counted (their projected
// score), and they are counted as such without being touched.
func applyChanges(ctx context.Context, tx pgx.Tx, changed []reactionState, rebuild map[string]bool, kept []reactionState) ([]messageapi.MessageView, error) {
	type delta struct{ count, score int64 }
	perMessage := map[string]map[string]delta{}
	for id := range rebuild {
		perMessage[id] = map[string]delta{}
	}
	for _, r := range kept {
		t := perMessage[r.messageID][r.reactionType]
		perMessage[r.messageID][r.reactionType] = delta{t.count + 1, t.score + int64(r.projectedScore)}
	}
	var liveIDs, tombstones []string
	var liveVersions []int64
	var liveScores []int32
	for _, r := range changed {
		var d delta
		if r.projectedScore > 0 && !rebuild[r.messageID] { // what the view counts for this row now
			d.count--
			d.score -= int64(r.projectedScore)
		}
		if !r.deleted { // what it must count
			d.count++
			d.score += int64(r.score)
			liveIDs = append(liveIDs, r.id)
			liveVersions = append(liveVersions, r.version)
			liveScores = append(liveScores, int32(r.score))
		} else {
			tombstones = append(tombstones, r.id)
		}
		if perMessage[r.messageID] == nil {
			perMessage[r.messageID] = map[string]delta{}
		}
		t := perMessage[r.messageID][r.reactionType]
		perMessage[r.messageID][r.reactionType] = delta{t.count + d.count, t.score + d.score}
	}
	messageIDs := make([]string, 0, len(perMessage))
	for id := range perMessage {
		messageIDs = append(messageIDs, id)
	}
	slices.Sort(messageIDs)

	views, err := lockViews(ctx, tx, messageIDs)
	if err != nil {
		return nil, err
	}
	for i := range views {
		v := &views[i]
		if rebuild[v.ID] {
			v.ReactionCount, v.ReactionCounts, v.ReactionScores = 0, map[string]int64{}, map[string]int64{}
		}
		for reactionType, d := range perMessage[v.ID] {
			v.ApplyReactionDelta(reactionType, d.count, d.score)
		}
		v.Version++
	}
	if err := readLatest(ctx, tx, views); err != nil {
		return nil, err
	}

	// The writes go in one round trip.
	b := &pgx.Batch{}
	if err := queueViewUpdates(b, views); err != nil {
		return nil, err
	}
	if len(liveIDs) > 0 {
		b.Queue(`
			update reactions r set projected_version = u.version, projected_score = u.score
			from unnest($1::uuid[], $2::bigint[], $3::int[]) as u(id, version, score)
			where r.id = u.id`, liveIDs, liveVersions, liveScores)
	}
	if len(tombstones) > 0 {
		// Folded tombstones are purged: nothing refers to them any more.
		b.Queue(`delete from reactions where id = any($1::uuid[])`, tombstones)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write views: %w", err)
	}
	return views, nil
}

// lockViews locks and reads the views of messageIDs, which must be sorted.
func lockViews(ctx context.Context, tx pgx.Tx, messageIDs []string) ([]messageapi.MessageView, error) {
	rows, err := tx.Query(ctx, `
		select `+viewColumns+`
		from message_views v join messages m on m.id = v.message_id
		where v.message_id = any($1::uuid[])
		order by v.message_id
		for update of v`, messageIDs)
	if err != nil {
		return nil, fmt.Errorf("lock views: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (messageapi.MessageView, error) {
		return scanView(row)
	})
}

// readLatest sets each view's latest reactions by re-reading them: ten
// rows of an index scan per message, cheaper than patching the list and
// always right after a delete. It runs after the views are locked, so a
// later fold of the same message re-reads after this one commits.
func readLatest(ctx context.Context, tx pgx.Tx, views []messageapi.MessageView) error {
	ids := make([]string, len(views))
	byID := make(map[string]*messageapi.MessageView, len(views))
	for i := range views {
		ids[i] = views[i].ID
		views[i].Reactions = []messageapi.Reaction{}
		byID[views[i].ID] = &views[i]
	}
	rows, err := tx.Query(ctx, `
		select r.id::text, r.message_id::text, r.user_id, r.type, r.score, r.created_at, r.updated_at
		from unnest($1::uuid[]) as m(id)
		cross join lateral (
			select * from reactions
			where message_id = m.id and deleted_at is null
			order by created_at desc, id desc
			limit $2
		) r
		order by r.message_id, r.created_at desc, r.id desc`, ids, messageapi.InlineReactions)
	if err != nil {
		return fmt.Errorf("read latest reactions: %w", err)
	}
	latest, err := pgx.CollectRows(rows, scanReaction)
	if err != nil {
		return fmt.Errorf("read latest reactions: %w", err)
	}
	for _, r := range latest {
		v := byID[r.MessageID]
		v.Reactions = append(v.Reactions, r)
	}
	return nil
}

// queueViewUpdates queues one statement that writes every view.
func queueViewUpdates(b *pgx.Batch, views []messageapi.MessageView) error {
	n := len(views)
	ids, counts, versions := make([]string, n), make([]int64, n), make([]int64, n)
	perType, scores, latest := make([]string, n), make([]string, n), make([]string, n)
	for i, v := range views {
		ids[i], counts[i], versions[i] = v.ID, v.ReactionCount, v.Version
		c, err1 := json.Marshal(v.ReactionCounts)
		s, err2 := json.Marshal(v.ReactionScores)
		l, err3 := json.Marshal(v.Reactions)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("encode view %s: %w", v.ID, err)
		}
		perType[i], scores[i], latest[i] = string(c), string(s), string(l)
	}
	b.Queue(`
		update message_views v set
			reaction_count = u.count, reaction_counts = u.counts::jsonb, reaction_scores = u.scores::jsonb,
			latest_reactions = u.latest::jsonb, version = u.version
		from unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
			as u(id, count, counts, scores, latest, version)
		where v.message_id = u.id`, ids, counts, perType, scores, latest, versions)
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

// ReconcilePage checks the views of up to limit messages after afterID (in
// id order; "" starts at the first) against the aggregate over their live
// reactions, and rebuilds every view that differs. It returns how many it
// checked, the last message id checked, the views it rebuilt, and the ids
// among them that had drifted: their view disagreed with the changes
// recorded as folded, which no pending change explains.
func (p *Projector) ReconcilePage(ctx context.Context, afterID string, limit int) (checked int, last string, rebuilt []messageapi.MessageView, drifted []string, err error) {
	qctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	if afterID == "" {
		afterID = "00000000-0000-0000-0000-000000000000"
	}
	// A lock-free first pass finds the candidates; each is then rebuilt
	// under locks, where pending changes and real drift can be told apart.
	rows, err := p.db.pool.Query(qctx, `
		select v.message_id::text,
			v.reaction_count = coalesce(a.count, 0)
			and v.reaction_counts = coalesce(a.counts, '{}')
			and v.reaction_scores = coalesce(a.scores, '{}')
		from message_views v
		left join lateral (
			select sum(c)::bigint as count, jsonb_object_agg(type, c) as counts, jsonb_object_agg(type, s) as scores
			from (
				select type, count(*) as c, sum(score) as s
				from reactions r
				where r.message_id = v.message_id and r.deleted_at is null
				group by type
			) t
		) a on true
		where v.message_id > $1
		order by v.message_id
		limit $2`, afterID, limit)
	if err != nil {
		return 0, "", nil, nil, translate(err, "reconcile")
	}
	var candidates []string
	var id string
	var same bool
	_, err = pgx.ForEachRow(rows, []any{&id, &same}, func() error {
		checked++
		last = id
		if !same {
			candidates = append(candidates, id)
		}
		return nil
	})
	if err != nil {
		return 0, "", nil, nil, translate(err, "reconcile")
	}
	for _, id := range candidates {
		v, drift, err := p.rebuild(ctx, id)
		if err != nil {
			return 0, "", nil, nil, err
		}
		rebuilt = append(rebuilt, v)
		if drift {
			drifted = append(drifted, id)
		}
	}
	return checked, last, rebuilt, drifted, nil
}

// rebuild recomputes one message's view from all its reaction rows, under
// the locks a fold takes (reactions in id order, then the view), and marks
// every row projected. drift reports that the view disagreed with the
// scores recorded as folded.
func (p *Projector) rebuild(ctx context.Context, messageID string) (messageapi.MessageView, bool, error) {
	ctx, cancel := p.db.withTimeout(ctx)
	defer cancel()
	var view messageapi.MessageView
	var drift bool
	err := pgx.BeginFunc(ctx, p.db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			select id::text, message_id::text, type, score, deleted_at is not null, version, projected_score
			from reactions where message_id = $1
			order by id
			for update`, messageID)
		if err != nil {
			return err
		}
		all, err := pgx.CollectRows(rows, scanState)
		if err != nil {
			return err
		}
		before, err := lockViews(ctx, tx, []string{messageID})
		if err != nil {
			return err
		}
		if len(before) == 0 {
			return fmt.Errorf("message %s has no view", messageID)
		}
		// Reactions created after the locking read above were not locked by
		// it, and a fold may have counted them before this transaction took
		// the view. Read them now, under the view lock: what was folded is
		// visible, and a fold still waiting for the view will apply its
		// change on top of the projected score counted here.
		locked := make([]string, len(all))
		for i, r := range all {
			locked[i] = r.id
		}
		rows, err = tx.Query(ctx, `
			select id::text, message_id::text, type, score, deleted_at is not null, version, projected_score
			from reactions
			where message_id = $1 and not (id = any($2::uuid[])) and projected_score > 0`, messageID, locked)
		if err != nil {
			return err
		}
		kept, err := pgx.CollectRows(rows, scanState)
		if err != nil {
			return err
		}
		folded := messageapi.NewMessageView(before[0].Message)
		for _, r := range append(slices.Clone(all), kept...) {
			if r.projectedScore > 0 {
				folded.ApplyReactionDelta(r.reactionType, 1, int64(r.projectedScore))
			}
		}
		drift = !sameCounts(before[0], folded)
		views, err := applyChanges(ctx, tx, all, map[string]bool{messageID: true}, kept)
		if err != nil {
			return err
		}
		view = views[0]
		return nil
	})
	return view, drift, translate(err, "reconcile message "+messageID)
}

func sameCounts(a, b messageapi.MessageView) bool {
	return a.ReactionCount == b.ReactionCount &&
		maps.Equal(a.ReactionCounts, b.ReactionCounts) &&
		maps.Equal(a.ReactionScores, b.ReactionScores)
}
