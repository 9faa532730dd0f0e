// Package stream carries reaction changes from the API to the worker on
// Redis Streams.
//
//   - Stream splits the changes into partitions by message (PartitionOf),
//     each a stream key under a hash tag of its own,
//     {<prefix>reactions:<i>}, with a dead-letter stream beside it
//     ({<prefix>reactions:<i>}:dead), trimmed to its share of the maximum
//     length. A Consumer reads one partition in a consumer group, claims
//     the entries of consumers that died, acknowledges what has been
//     folded, and dead-letters what cannot be.
//   - Publisher appends changes in the background, in batches, so a write
//     never waits for Redis; a change it drops is still in PostgreSQL, and
//     the worker's sweeper folds it.
//   - Leases gives each partition one owning worker at a time: a key
//     beside the partition ({<prefix>reactions:<i>}:owner) that its owner
//     renews, and a registry of live workers ({<prefix>workers}), so that
//     the workers share the partitions out and take over a dead one's.
//
// Redis is never the source of truth: every failure is reported as
// unavailable (see redis.Translate), and a change trimmed or lost from the
// stream is folded from PostgreSQL. The partitioning and the leases are
// explained in DESIGN.md at the root of the repository ("Scaling out").
package stream
