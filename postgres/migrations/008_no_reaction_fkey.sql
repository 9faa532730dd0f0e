-- Drop the foreign key from reactions to messages. Every reaction row is
-- written by put_reaction, which first locks its message FOR KEY SHARE
-- and checks that it exists and is not deleted; the key's trigger then
-- took the same lock again, with a query of its own, on every insert.
-- Messages are never removed (a delete leaves a tombstone, and removes
-- the message's reactions itself, under the message's row lock), so the
-- key has nothing left to guard and nothing to cascade.
alter table reactions drop constraint reactions_message_id_fkey;

---- create above / drop below ----

alter table reactions
    add constraint reactions_message_id_fkey foreign key (message_id) references messages (id) on delete cascade;
