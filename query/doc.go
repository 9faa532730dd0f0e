// Package query implements the read side: one use case per file. Reads
// come from the projection: cached latest pages from Redis when the cache
// can answer exactly, everything else from the PostgreSQL read model, with
// no aggregation at read time.
package query
