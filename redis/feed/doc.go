// Package feed is the live feed of public events on Redis: one capped
// stream, {<prefix>events}, that the worker (reaction changes, after their
// fold commits) and the API (new messages, after their commit) append to,
// and that every API process reads with a blocking XREAD and fans out to
// its clients.
//
// A stream id is an event's position and its Server-Sent Events id, so a
// client that reconnects resumes after the last id it saw: Since answers
// from the feed while it still holds that id, and says the client must
// start afresh when the id was trimmed, or Redis lost the feed. Tail reads
// the newest events for a process's in-memory window. Publish queues an
// event without waiting for Redis.
//
// The feed is a notification channel, not a record: an event that never
// reached it (Redis down, a queue full, a process killed) is not
// replayed; counts stay exact in PostgreSQL, and the next event of the
// message carries them. The window, resumes and their bounds are
// explained in DESIGN.md at the root of the repository ("Live events").
package feed
