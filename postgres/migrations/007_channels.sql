-- Channels: every message belongs to one, and a page is a keyset scan of
-- one channel. The messages of the routes that name no channel
-- (/messages), and every message from before channels, are in "default".
-- A constant default adds the column without rewriting the table.
alter table messages
    add column channel_id text not null default 'default'
        check (channel_id ~ '^[A-Za-z0-9_-]{1,64}$');

-- GET /channels/{channel_id}/messages and GET /messages walk this index
-- backwards: keyset pages (id < cursor) and page=N within one channel.
create index messages_channel_id_idx on messages (channel_id, id);

---- create above / drop below ----

drop index messages_channel_id_idx;
alter table messages drop column channel_id;
