// Package redis is the client that the Redis-backed parts of the API
// share, and the plumbing they build on. Each capability has a package of
// its own below it:
//
//   - redis/pagecache: the page cache of the latest messages, the near
//     cache in each API process with its invalidation announcements over
//     Pub/Sub, and readers' own reactions held beside it;
//   - redis/stream: the partitioned stream of reaction changes from the
//     API to the worker, its publisher, and the partitions' leases;
//   - redis/feed: the live feed of public events;
//   - redis/redistest: a key prefix of its own for each test, and a Redis
//     Cluster for the tests that need one.
//
// Redis is never the source of truth. Every failure is reported as
// unavailable (Translate), so callers fall back to PostgreSQL, and every
// call goes through a circuit breaker (Do), so an unreachable Redis costs
// microseconds per request. All keys share the client's prefix, so tests
// and tenants can share a server, and are grouped under hash tags (Key):
// every Lua script and multi-key command touches keys of one tag, so one
// slot, and the capabilities run on a standalone Redis or a Redis Cluster
// alike.
//
// The client's own metrics are the breaker's state and the pool's
// statistics; each capability declares its own (MetricSet), and all are
// registered with Config.Registerer when the client is opened. Queue is
// the batching append queue behind the stream's publisher, the feed's
// Publish and the own-reactions announcements.
package redis
