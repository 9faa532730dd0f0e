-- Drop reactions_message_latest_idx. Every query it served is answered
-- from reactions_message_type_latest_idx, which leads with the same
-- message_id: a list of one type by a range scan, a list of all types by a
-- merge of the newest of each (a skip scan finds the types). So every
-- reaction write maintains one index fewer, and a filter by type can use
-- no index but the right one: with both, a planner without statistics of
-- a hot message read its whole list to find a rare type (the plan guard
-- test, postgres/plan_guard_test.go).
drop index reactions_message_latest_idx;

---- create above / drop below ----

create index reactions_message_latest_idx
    on reactions (message_id, created_at desc, id desc)
    where deleted_at is null;
