package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"messageapi"
)

// ReconcilePage checks the views of up to p.Limit messages after p.AfterID
// against the aggregate over their live reactions, and rebuilds every view
// that differs.
func (pr *Projector) ReconcilePage(ctx context.Context, p messageapi.ReconcileParams) (messageapi.ReconcileResult, error) {
	candidates, res, err := pr.reconcileCandidates(ctx, p)
	if err != nil {
		return messageapi.ReconcileResult{}, err
	}
	for _, id := range candidates {
		v, drifted, err := pr.rebuild(ctx, id)
		if err != nil {
			return messageapi.ReconcileResult{}, err
		}
		res.Rebuilt = append(res.Rebuilt, v)
		if drifted {
			res.Drifted = append(res.Drifted, id)
		}
	}
	return res, nil
}

// reconcileCandidates is a lock-free first pass over a page of views: it
// returns the messages whose view differs from the aggregate over their
// live reactions. Each is then rebuilt under locks, where a change still
// waiting for its fold and real drift can be told apart.
func (pr *Projector) reconcileCandidates(ctx context.Context, p messageapi.ReconcileParams) ([]string, messageapi.ReconcileResult, error) {
	ctx, cancel := pr.db.withTimeout(ctx)
	defer cancel()
	after := p.AfterID
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	// The groups are compared whole: counts, sums and times, in the
	// compact form (view_codec.go) to which compact_reaction_groups
	// (migration 012) also brings a row of the older form.
	rows, err := pr.db.pool.Query(ctx, `
		select v.message_id::text,
			v.reaction_count = coalesce(a.count, 0)
			and compact_reaction_groups(v.reaction_groups) = coalesce(a.groups, '{}')
		from message_views v
		left join lateral (
			`+CountedGroupsSQL("v.message_id")+`
		) a on true
		where v.message_id > $1
		order by v.message_id
		limit $2`, after, p.Limit)
	if err != nil {
		return nil, messageapi.ReconcileResult{}, translate(err, "reconcile")
	}
	var res messageapi.ReconcileResult
	var candidates []string
	var id string
	var same bool
	_, err = pgx.ForEachRow(rows, []any{&id, &same}, func() error {
		res.Checked++
		res.LastID = id
		if !same {
			candidates = append(candidates, id)
		}
		return nil
	})
	if err != nil {
		return nil, messageapi.ReconcileResult{}, translate(err, "reconcile")
	}
	return candidates, res, nil
}

// rebuild recomputes one message's view from all its reaction rows, under
// the locks a fold takes (reactions in id order, then the view), and
// settles every pending change of them. drifted reports that the view
// disagreed with what it should count: each reaction's base score while a
// change is pending, its current state otherwise.
func (pr *Projector) rebuild(ctx context.Context, messageID string) (view messageapi.MessageView, drifted bool, err error) {
	ctx, cancel := pr.db.withTimeout(ctx)
	defer cancel()
	err = pgx.BeginFunc(ctx, pr.db.pool, func(tx pgx.Tx) error {
		locked, _, err := lockStates(ctx, tx, `
			select id::text from reactions where message_id = $1
			order by id
			for update`, []any{messageID}, `r.message_id = $1`, messageID)
		if err != nil {
			return err
		}
		before, err := lockViews(ctx, tx, []string{messageID}, false, false)
		if err != nil {
			return err
		}
		if len(before) == 0 {
			return fmt.Errorf("message %s has no view", messageID)
		}
		// Reactions created after the locking read above were not locked by
		// it, and a fold may have counted them before this transaction took
		// the view. Read them now, under the view lock: what the views count
		// of each is visible (its base score while a change is pending, a
		// live reaction's score when none is), and a fold still waiting for
		// the view will apply its change on top of what is counted here.
		rows, err := tx.Query(ctx, `
			select `+stateColumns+`
			from `+statesFrom+`
			where r.message_id = $1 and not (r.id = any($2::uuid[]))
				and case when c.reaction_id is not null then c.base_score > 0 else r.deleted_at is null end`,
			messageID, stateIDs(locked))
		if err != nil {
			return fmt.Errorf("read kept reactions: %w", err)
		}
		kept, err := pgx.CollectRows(rows, scanState)
		if err != nil {
			return fmt.Errorf("read kept reactions: %w", err)
		}
		counted := messageapi.NewMessageView(before[0].Message)
		counted.Apply(messageapi.CountedTotals(slices.Concat(locked, kept)))
		drifted = !before[0].CountsEqual(counted)

		f := messageapi.RebuildReactions(locked, kept)
		if !slices.Contains(f.Messages, messageID) { // no reactions at all: still empty the view
			f.Messages = append(f.Messages, messageID)
		}
		views, err := writeFold(ctx, tx, f, before, true, locked)
		if err != nil {
			return err
		}
		view = views[0]
		return nil
	})
	return view, drifted, translate(err, "reconcile message "+messageID)
}

// CountedGroupsSQL selects, for the message whose id the SQL expression
// message names, what its view counts once every change is folded: the
// number of live reactions (count) and the groups in their stored compact
// form (groups, null without reactions), read per type over
// reactions_message_type_latest_idx. Reconcile compares views with it, and
// loadtest/seed writes views from it.
func CountedGroupsSQL(message string) string {
	return `select sum(c)::bigint as count,
		jsonb_object_agg(type, jsonb_build_array(c, s,
			floor(extract(epoch from f) * 1000)::bigint, floor(extract(epoch from l) * 1000)::bigint)) as groups
	from (
		select type, count(*) as c, sum(score) as s, min(created_at) as f, max(created_at) as l
		from reactions r
		where r.message_id = ` + message + ` and r.deleted_at is null
		group by type
	) t`
}
