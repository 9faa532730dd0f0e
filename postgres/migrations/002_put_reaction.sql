-- put_reaction creates the reaction of (message, user, type) or sets the
-- score of the existing one, in one round trip, and says whether the
-- reaction is new to the client: inserted, or revived from a tombstone.
--
-- It decides under the row lock. A single upsert statement could only tell
-- from its snapshot, so two simultaneous first posts both answered 201, and
-- a post racing a delete answered 200 while it revived the reaction.
create function put_reaction(
    p_id uuid, p_message_id uuid, p_user_id text, p_type text, p_score integer, p_at timestamptz,
    out id uuid, out score integer, out created_at timestamptz, out updated_at timestamptz,
    out version bigint, out created boolean)
language plpgsql as $$
declare
    live boolean;
begin
    loop
        -- Most posts are new reactions: try the insert first. A row for the
        -- key, live or a tombstone, makes it do nothing.
        insert into reactions as r (id, message_id, user_id, type, score, created_at, updated_at)
        values (p_id, p_message_id, p_user_id, p_type, p_score, p_at, p_at)
        on conflict (message_id, user_id, type) do nothing
        returning r.id, r.score, r.created_at, r.updated_at, r.version, true
        into id, score, created_at, updated_at, version, created;
        if found then
            return;
        end if;
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
            returning r.id, r.score, r.created_at, r.updated_at, r.version, not live
            into id, score, created_at, updated_at, version, created;
            return;
        end if;
        -- The row was purged between the two statements: insert again.
    end loop;
end
$$;

---- create above / drop below ----

drop function put_reaction;
