// Package e2e holds the tests that build the real api and worker binaries
// and start them on free ports, each against a PostgreSQL schema and a
// Redis key prefix of its own: the whole HTTP contract (the scenarios of
// e2e.hurl), and every failure of the degradation table injected into the
// running processes.
package e2e
