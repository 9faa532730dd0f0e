-- Smaller views. A view was the largest row of a message, larger than the
-- message and its reactions together, for three reasons, all gone here:
--
-- - reaction_counts and reaction_scores repeat what reaction_groups holds
--   (a group's count and sum_scores); every reader reads the groups, so
--   the two columns are dropped;
-- - reaction_groups and latest_reactions repeated, in every element, the
--   key names and the times as RFC 3339 strings; the projection now writes
--   them compact (postgres/view_codec.go): a group is [count, sum_scores,
--   first_ms, last_ms], a reaction [id, user_id, type, score, created_ms]
--   (with updated_ms when it differs), without the message id, which is
--   the view's own. Clients read the same JSON as before.
--
-- Existing rows keep the older form until a fold rewrites them: readers
-- read both, and compact_reaction_groups lets reconcile compare either
-- with the groups it computes, so the migration rewrites no row.
--
-- An API process of an earlier build fails its message deletes (which
-- write the dropped columns) until it is replaced; see docs/operations.md.
alter table message_views drop column reaction_counts, drop column reaction_scores;

create function compact_reaction_groups(groups jsonb) returns jsonb
language sql stable parallel safe as $$
    select coalesce(jsonb_object_agg(g.key, case when jsonb_typeof(g.value) = 'object' then
        jsonb_build_array((g.value ->> 'count')::bigint, (g.value ->> 'sum_scores')::bigint,
            floor(extract(epoch from (g.value ->> 'first_reaction_at')::timestamptz) * 1000)::bigint,
            floor(extract(epoch from (g.value ->> 'last_reaction_at')::timestamptz) * 1000)::bigint)
        else g.value end), '{}'::jsonb)
    from jsonb_each(groups) g
$$;

---- create above / drop below ----

drop function compact_reaction_groups(jsonb);
alter table message_views add column reaction_counts jsonb not null default '{}',
    add column reaction_scores jsonb not null default '{}';
-- The object forms again, for the build before (which reads nothing
-- else), with the counts and sums of the groups.
update message_views v set
    reaction_counts = coalesce((select jsonb_object_agg(g.key, case when jsonb_typeof(g.value) = 'object' then g.value -> 'count' else g.value -> 0 end)
        from jsonb_each(v.reaction_groups) g), '{}'),
    reaction_scores = coalesce((select jsonb_object_agg(g.key, case when jsonb_typeof(g.value) = 'object' then g.value -> 'sum_scores' else g.value -> 1 end)
        from jsonb_each(v.reaction_groups) g), '{}'),
    reaction_groups = coalesce((select jsonb_object_agg(g.key, case when jsonb_typeof(g.value) = 'object' then g.value else
        jsonb_build_object('count', g.value -> 0, 'sum_scores', g.value -> 1,
            'first_reaction_at', to_char(to_timestamp((g.value ->> 2)::numeric / 1000) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'last_reaction_at', to_char(to_timestamp((g.value ->> 3)::numeric / 1000) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) end)
        from jsonb_each(v.reaction_groups) g), '{}'),
    latest_reactions = coalesce((select jsonb_agg(case when jsonb_typeof(r.value) = 'object' then r.value else
        jsonb_build_object('id', r.value -> 0, 'message_id', v.message_id, 'user_id', r.value -> 1, 'type', r.value -> 2, 'score', r.value -> 3,
            'created_at', to_char(to_timestamp((r.value ->> 4)::numeric / 1000) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'updated_at', to_char(to_timestamp(coalesce(r.value ->> 5, r.value ->> 4)::numeric / 1000) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        end order by r.ordinality) from jsonb_array_elements(v.latest_reactions) with ordinality r), '[]');
