// Package pagecache caches the latest pages of messages, in Redis and in
// each API process, with readers' own reactions beside them.
//
//   - Cache is the page cache in Redis: for each cached channel (the
//     default one, and every other one read lately, within a byte budget
//     shared by all processes), a sorted set of the newest message ids,
//     as deep as its pages were read, and one entry per message with its
//     view. Every write is a version compare-and-set in Lua; a rebuild
//     from PostgreSQL marks itself in flight, and the messages written
//     meanwhile are merged into it, so an installed index never lacks a
//     message; a read of a deeper page extends the index by the messages
//     below it. A write that failed drops its channel's index once Redis
//     answers again. A channel's keys share the hash tag {<prefix>cache}
//     (the default channel) or {<prefix>cache:<channel>}; the budget's
//     accounting has {<prefix>cache-budget}.
//   - NearCache keeps, in one process, the pages it read through the
//     Cache, within a byte bound. Each Lua script that changes the Cache announces it on the
//     Pub/Sub channel {<prefix>cache}:changes, and every process drops its
//     pages of the announced channel; while the subscription is down nothing is
//     kept, and no page is served past its maximum age.
//   - OwnReactions holds, beside the near cache and on its subscription,
//     every reaction of the messages read most, so that a reader's own
//     reactions cost no read of PostgreSQL. A reaction write forgets the
//     writer's reactions on its message at once and announces it on
//     {<prefix>cache}:own for the other processes.
//
// Redis is never the source of truth: every failure is reported as
// unavailable (see redis.Translate), and callers read PostgreSQL instead.
// Why each piece is exact, and the staleness bound of each, are in
// DESIGN.md at the root of the repository ("Reads: three tiers, and how
// stale each may be").
package pagecache
