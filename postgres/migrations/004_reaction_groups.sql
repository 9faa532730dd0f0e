-- reaction_groups: per type, the count and the sum of scores (folded as
-- deltas, exactly like reaction_counts and reaction_scores, which stay for
-- the readers that predate the groups) and the created_at of the first and
-- the latest live reaction (re-read from reactions_message_type_latest_idx
-- by each fold that touches the type: two index probes).
alter table message_views add column reaction_groups jsonb not null default '{}';

-- Existing views: the counts and sums they hold, with the times of the
-- live reactions of each type.
update message_views v set reaction_groups = g.groups
from (
    select v2.message_id, jsonb_object_agg(c.key, jsonb_build_object(
        'count', c.value::bigint,
        'sum_scores', (v2.reaction_scores ->> c.key)::bigint,
        'first_reaction_at', to_char(t.first at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'last_reaction_at', to_char(t.last at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) as groups
    from message_views v2
    cross join lateral jsonb_each_text(v2.reaction_counts) c
    cross join lateral (
        select min(r.created_at) as first, max(r.created_at) as last
        from reactions r
        where r.message_id = v2.message_id and r.type = c.key and r.deleted_at is null
    ) t
    group by v2.message_id
) g
where v.message_id = g.message_id;

---- create above / drop below ----

alter table message_views drop column reaction_groups;
