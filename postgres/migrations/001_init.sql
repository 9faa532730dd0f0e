-- Write model: messages. The id is a UUIDv7, so primary-key order is
-- creation order and created_at is the time embedded in the id.
create table messages (
    id         uuid primary key, -- GET /messages walks this index backwards: keyset pages (id < cursor) and page=N
    text       text not null check (char_length(text) between 1 and 5000),
    user_id    text not null check (user_id ~ '^[A-Za-z0-9_.@-]{1,128}$'),
    created_at timestamptz not null
);

-- Write model: reactions. One row per (message, user, type); a repeat post
-- sets the score. A delete leaves a tombstone (deleted_at set, version
-- bumped) until the projection has folded it; then the row is purged.
--
-- version rises with every change. projected_version and projected_score
-- record what the projection last folded into message_views, so folding is
-- a difference between current and projected state: idempotent and
-- independent of the order or number of stream deliveries.
create table reactions (
    id                uuid primary key, -- the projection locks and reads changed rows by id
    message_id        uuid not null references messages (id) on delete cascade,
    user_id           text not null check (user_id ~ '^[A-Za-z0-9_.@-]{1,128}$'),
    type              text not null check (type ~ '^[a-z0-9_+-]{1,30}$'),
    score             integer not null check (score between 1 and 1000000),
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    deleted_at        timestamptz,
    version           bigint not null default 1,
    projected_version bigint not null default 0,
    projected_score   integer not null default 0, -- 0: not counted in the view
    -- POST and DELETE /messages/{id}/reactions find the row by this key; it
    -- also serves GET /messages/{id}/reactions?user_id= (few rows per user).
    constraint reactions_message_user_type_key unique (message_id, user_id, type)
);

-- GET /messages/{id}/reactions (newest first, keyset on (created_at, id)) and
-- the projection's re-read of a message's latest reactions. Live rows only.
create index reactions_message_latest_idx
    on reactions (message_id, created_at desc, id desc)
    where deleted_at is null;

-- GET /messages/{id}/reactions?type=: the same order within one type, so a
-- rare type on a hot message is not found by filtering the whole list.
create index reactions_message_type_latest_idx
    on reactions (message_id, type, created_at desc, id desc)
    where deleted_at is null;

-- The sweeper (changes whose stream entry was lost) and the lag metric
-- (oldest unprojected change). Small: a row leaves the index once folded.
create index reactions_unprojected_idx
    on reactions (updated_at)
    where version <> projected_version;

-- Read model, written only by the projection (and created empty with its
-- message). A page read joins it to messages by primary key: no count(*)
-- and no aggregation at read time. Hot rows are rewritten once per batch;
-- the free space left by fillfactor keeps those updates HOT (no index
-- column changes), so they do not bloat the primary key.
create table message_views (
    message_id       uuid primary key references messages (id) on delete cascade,
    reaction_count   bigint not null default 0,
    reaction_counts  jsonb not null default '{}', -- type -> number of reactions
    reaction_scores  jsonb not null default '{}', -- type -> sum of scores
    latest_reactions jsonb not null default '[]', -- at most 10, newest first
    version          bigint not null default 0
) with (fillfactor = 80);

-- Reactions churn (two updates per change, tombstones purged); vacuum them
-- sooner than the default 20 % of the table.
alter table reactions set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
alter table message_views set (autovacuum_vacuum_scale_factor = 0.05);

---- create above / drop below ----

drop table message_views;
drop table reactions;
drop table messages;
