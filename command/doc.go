// Package command implements the write side: one use case per file, each
// with a command struct, a handler that holds its dependencies and a
// constructor that rejects missing ones.
//
// Handlers validate every command themselves, so no entry point can skip
// validation. PostgreSQL is written first and is the truth; Redis work
// after the commit (cache write-through, stream append) is best effort and
// never fails a request, because the projection and the cache rebuild
// recover from anything Redis missed.
package command
