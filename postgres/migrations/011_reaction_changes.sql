-- What a fold still has to count moves out of the reactions table.
--
-- Each reaction row carried projected_version and projected_score, what
-- the views last counted of it, and the sweeper and the lag gauge found
-- the rows still to fold through the partial index
-- reactions_unprojected_idx (where version <> projected_version). So every
-- fold updated each reaction it counted, and since that update changed a
-- column of an index predicate it could never be HOT: it wrote a new
-- entry into every index of reactions, and they grew by the size of the
-- table every few million changes.
--
-- reaction_changes holds one row per reaction with a change the views do
-- not count yet, with base_score, the score they count for it (0: none).
-- A trigger records it in the transaction of the write, whichever
-- statement wrote (put_reaction, the delete, a process of an earlier
-- build): a write of a reaction with no pending change takes the row's
-- state before the write as the base, since the views counted exactly
-- that; a write of one with a pending change leaves the base as it is.
-- The fold that counts the change deletes the record in its own
-- transaction, and writes nothing to reactions but the purge of a counted
-- tombstone. The sweeper and the lag read this small table.
create table reaction_changes (
    reaction_id uuid primary key,
    changed_at  timestamptz not null, -- the first pending change's updated_at: the sweeper's age and the lag
    base_score  integer not null      -- what the views count for the reaction: its score, or 0 for nothing
);
create index reaction_changes_changed_at_idx on reaction_changes (changed_at);
-- Rows come and go within seconds: vacuum the dead ones early.
alter table reaction_changes set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);

create function record_reaction_change() returns trigger
language plpgsql as $$
begin
    insert into reaction_changes (reaction_id, changed_at, base_score)
    values (new.id, new.updated_at,
            case when tg_op = 'UPDATE' and old.deleted_at is null then old.score else 0 end)
    on conflict (reaction_id) do nothing;
    return null;
end
$$;

-- Every change of a reaction raises its version; the purge of a counted
-- tombstone and a message's delete remove rows, and settle their records
-- themselves.
create trigger reactions_record_change
    after insert or update of version on reactions
    for each row execute function record_reaction_change();

-- The changes pending at the migration, with what the views count of them.
insert into reaction_changes (reaction_id, changed_at, base_score)
select id, updated_at, projected_score from reactions where version <> projected_version;

-- A worker of the previous build fails on its next fold instead of
-- counting a change twice (stop those workers before this migration: see
-- docs/operations.md).
drop index reactions_unprojected_idx;
alter table reactions drop column projected_version, drop column projected_score;

---- create above / drop below ----

alter table reactions add column projected_version bigint not null default 0,
    add column projected_score integer not null default 0;
update reactions r set projected_version = r.version,
    projected_score = case when r.deleted_at is null then r.score else 0 end
where not exists (select from reaction_changes c where c.reaction_id = r.id);
update reactions r set projected_version = 0, projected_score = c.base_score
from reaction_changes c where c.reaction_id = r.id;
create index reactions_unprojected_idx
    on reactions (updated_at)
    where version <> projected_version;
drop trigger reactions_record_change on reactions;
drop function record_reaction_change();
drop table reaction_changes;
