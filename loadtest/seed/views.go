package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"messageapi/postgres"
)

// buildViewsSQL creates the view of every message that has none, computed
// from its live reactions in one set-based statement: what the projection
// would have written after folding every reaction (postgres.writeFold),
// in the compact forms of postgres/view_codec.go. It is the one place that
// knows the read model's columns; when the schema or the projection
// changes, change it here.
//
//   - reaction_count: the number of live reactions;
//   - reaction_groups: per type, [count, sum_scores, first_ms, last_ms],
//     the times in milliseconds since the Unix epoch, from
//     postgres.CountedGroupsSQL, which reconcile compares them with;
//   - latest_reactions: the newest messageapi.InlineReactions (10), by
//     created_at then id, both descending, each [id, user_id, type,
//     score, created_ms], with updated_ms after it when it differs;
//   - version: the number of live reactions, as if each had been folded
//     on its own (a view's version rises by one a fold; any value works as
//     long as later folds raise it).
//
// Both the groups and the latest reactions are read per message, by a
// lateral subquery over the indexes of reactions that lead with
// message_id (so they must exist first), as reconcile reads them. The
// seeder inserts each message's reactions together, so each subquery
// reads a few adjacent heap pages. On 1,000,000 messages with 10,000,000
// reactions that took 57 s, against 231 s (on the shared machine, busier
// then) for one hash aggregate and one window over all reactions, sorted
// and spilled to disk; the two gave the same views.
var buildViewsSQL = `
	insert into message_views (message_id, reaction_count, reaction_groups, latest_reactions, version)
	select m.id, coalesce(a.count, 0), coalesce(a.groups, '{}'), coalesce(l.latest, '[]'), coalesce(a.count, 0)
	from messages m
	left join lateral (
		` + postgres.CountedGroupsSQL("m.id") + `
	) a on true
	left join lateral (
		select jsonb_agg(
				case when updated_at = created_at
				then jsonb_build_array(id, user_id, type, score, floor(extract(epoch from created_at) * 1000)::bigint)
				else jsonb_build_array(id, user_id, type, score, floor(extract(epoch from created_at) * 1000)::bigint,
					floor(extract(epoch from updated_at) * 1000)::bigint) end
				order by created_at desc, id desc) as latest
		from (
			select * from reactions r
			where r.message_id = m.id and r.deleted_at is null
			order by created_at desc, id desc
			limit $1
		) r
	) l on true
	where not exists (select from message_views v where v.message_id = m.id)`

// buildViews runs buildViewsSQL and returns the number of views created.
func buildViews(ctx context.Context, conn *pgx.Conn, inline int) (int64, error) {
	tag, err := conn.Exec(ctx, buildViewsSQL, inline)
	if err != nil {
		return 0, fmt.Errorf("build views: %w", err)
	}
	return tag.RowsAffected(), nil
}
