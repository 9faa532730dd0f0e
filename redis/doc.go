// Package redis implements, on Redis, the page cache of the latest messages
// and the stream that carries reaction changes from the API to the worker.
//
// Redis is never the source of truth. Every cache write is a version
// compare-and-set done in Lua, so a slow writer cannot put an older view
// back, and every failure is reported as unavailable so callers fall back
// to PostgreSQL. All keys share one prefix, so tests and tenants can share
// a server. The Lua scripts read keys they compute from a prefix, so the
// package targets a standalone Redis (or one with all keys in one slot),
// not a Redis Cluster.
package redis
