-- put_reaction also returns the message's channel, which chooses the
-- reaction's stream partition. It reads it from the message row that it
-- locks anyway; a caller had to probe the message's key a second time.
--
-- An OUT parameter cannot be added in place: the function is dropped and
-- created again, in this migration's transaction. A process of the build
-- before names the columns it selects, so the one more column does not
-- change its statements' results, and it goes on calling this function.
drop function put_reaction(uuid, uuid, text, text, integer, timestamptz, integer, boolean);

create function put_reaction(
    p_id uuid, p_message_id uuid, p_user_id text, p_type text, p_score integer, p_at timestamptz,
    p_max_types integer, p_unique boolean,
    out status text, out id uuid, out score integer, out created_at timestamptz, out updated_at timestamptz,
    out version bigint, out removed_ids uuid[], out removed_versions bigint[], out channel_id text)
language plpgsql as $$
declare
    live boolean;
    types integer;
begin
    removed_ids := '{}';
    removed_versions := '{}';
    -- The message must exist and not be deleted, and stay so while this
    -- transaction runs: a delete locks the row for update, so it waits for
    -- this transaction, and this lock waits for a delete in progress, then
    -- sees its deleted_at. The same read returns the message's channel.
    select m.channel_id into channel_id
    from messages m where m.id = p_message_id and m.deleted_at is null for key share;
    if not found then
        status := 'not_found';
        return;
    end if;
    if p_unique then
        perform pg_advisory_xact_lock(hashtextextended('unique:' || p_message_id::text || ':' || p_user_id, 0));
    end if;
    if p_max_types > 0 and not exists (
        select from reactions r
        where r.message_id = p_message_id and r.type = p_type and r.deleted_at is null
    ) then
        perform pg_advisory_xact_lock(hashtextextended('types:' || p_message_id::text, 0));
        -- Count the live types with a skip scan of
        -- reactions_message_type_latest_idx: one probe a type, at most
        -- p_max_types + 1 of them, however many reactions the message has.
        with recursive t(type) as (
            (select r.type from reactions r
             where r.message_id = p_message_id and r.deleted_at is null
             order by r.type limit 1)
            union all
            select (select r.type from reactions r
                    where r.message_id = p_message_id and r.deleted_at is null and r.type > t.type
                    order by r.type limit 1)
            from t where t.type is not null
        )
        select count(*) into types from (select t.type from t where t.type is not null limit p_max_types + 1) c;
        if types >= p_max_types and not exists (
            select from reactions r
            where r.message_id = p_message_id and r.type = p_type and r.deleted_at is null
        ) then
            status := 'too_many_types';
            return;
        end if;
    end if;
    loop
        -- Most posts are new reactions: try the insert first. A row for the
        -- key, live or a tombstone, makes it do nothing.
        insert into reactions as r (id, message_id, user_id, type, score, created_at, updated_at)
        values (p_id, p_message_id, p_user_id, p_type, p_score, p_at, p_at)
        on conflict (message_id, user_id, type) do nothing
        returning 'created', r.id, r.score, r.created_at, r.updated_at, r.version
        into status, id, score, created_at, updated_at, version;
        exit when found;
        select r.deleted_at is null into live
        from reactions r
        where r.message_id = p_message_id and r.user_id = p_user_id and r.type = p_type
        for update;
        if found then
            update reactions r set
                score = p_score,
                updated_at = p_at,
                version = r.version + 1,
                created_at = case when live then r.created_at else p_at end,
                deleted_at = null
            where r.message_id = p_message_id and r.user_id = p_user_id and r.type = p_type
            returning case when live then 'updated' else 'created' end, r.id, r.score, r.created_at, r.updated_at, r.version
            into status, id, score, created_at, updated_at, version;
            exit;
        end if;
        -- The row was purged between the two statements: insert again.
    end loop;
    if p_unique then
        with gone as (
            update reactions r set deleted_at = p_at, updated_at = p_at, version = r.version + 1
            where r.message_id = p_message_id and r.user_id = p_user_id and r.type <> p_type and r.deleted_at is null
            returning r.id, r.version
        )
        select coalesce(array_agg(gone.id order by gone.id), '{}'), coalesce(array_agg(gone.version order by gone.id), '{}')
        into removed_ids, removed_versions
        from gone;
    end if;
end
$$;

---- create above / drop below ----

-- The function of 006 again.
drop function put_reaction(uuid, uuid, text, text, integer, timestamptz, integer, boolean);

create function put_reaction(
    p_id uuid, p_message_id uuid, p_user_id text, p_type text, p_score integer, p_at timestamptz,
    p_max_types integer, p_unique boolean,
    out status text, out id uuid, out score integer, out created_at timestamptz, out updated_at timestamptz,
    out version bigint, out removed_ids uuid[], out removed_versions bigint[])
language plpgsql as $$
declare
    live boolean;
    types integer;
begin
    removed_ids := '{}';
    removed_versions := '{}';
    -- The message must exist and not be deleted, and stay so while this
    -- transaction runs: a delete locks the row for update, so it waits for
    -- this transaction, and this lock waits for a delete in progress, then
    -- sees its deleted_at.
    perform 1 from messages m where m.id = p_message_id and m.deleted_at is null for key share;
    if not found then
        status := 'not_found';
        return;
    end if;
    if p_unique then
        perform pg_advisory_xact_lock(hashtextextended('unique:' || p_message_id::text || ':' || p_user_id, 0));
    end if;
    if p_max_types > 0 and not exists (
        select from reactions r
        where r.message_id = p_message_id and r.type = p_type and r.deleted_at is null
    ) then
        perform pg_advisory_xact_lock(hashtextextended('types:' || p_message_id::text, 0));
        -- Count the live types with a skip scan of
        -- reactions_message_type_latest_idx: one probe a type, at most
        -- p_max_types + 1 of them, however many reactions the message has.
        with recursive t(type) as (
            (select r.type from reactions r
             where r.message_id = p_message_id and r.deleted_at is null
             order by r.type limit 1)
            union all
            select (select r.type from reactions r
                    where r.message_id = p_message_id and r.deleted_at is null and r.type > t.type
                    order by r.type limit 1)
            from t where t.type is not null
        )
        select count(*) into types from (select t.type from t where t.type is not null limit p_max_types + 1) c;
        if types >= p_max_types and not exists (
            select from reactions r
            where r.message_id = p_message_id and r.type = p_type and r.deleted_at is null
        ) then
            status := 'too_many_types';
            return;
        end if;
    end if;
    loop
        -- Most posts are new reactions: try the insert first. A row for the
        -- key, live or a tombstone, makes it do nothing.
        insert into reactions as r (id, message_id, user_id, type, score, created_at, updated_at)
        values (p_id, p_message_id, p_user_id, p_type, p_score, p_at, p_at)
        on conflict (message_id, user_id, type) do nothing
        returning 'created', r.id, r.score, r.created_at, r.updated_at, r.version
        into status, id, score, created_at, updated_at, version;
        exit when found;
        select r.deleted_at is null into live
        from reactions r
        where r.message_id = p_message_id and r.user_id = p_user_id and r.type = p_type
        for update;
        if found then
            update reactions r set
                score = p_score,
                updated_at = p_at,
                version = r.version + 1,
                created_at = case when live then r.created_at else p_at end,
                deleted_at = null
            where r.message_id = p_message_id and r.user_id = p_user_id and r.type = p_type
            returning case when live then 'updated' else 'created' end, r.id, r.score, r.created_at, r.updated_at, r.version
            into status, id, score, created_at, updated_at, version;
            exit;
        end if;
        -- The row was purged between the two statements: insert again.
    end loop;
    if p_unique then
        with gone as (
            update reactions r set deleted_at = p_at, updated_at = p_at, version = r.version + 1
            where r.message_id = p_message_id and r.user_id = p_user_id and r.type <> p_type and r.deleted_at is null
            returning r.id, r.version
        )
        select coalesce(array_agg(gone.id order by gone.id), '{}'), coalesce(array_agg(gone.version order by gone.id), '{}')
        into removed_ids, removed_versions
        from gone;
    end if;
end
$$;
