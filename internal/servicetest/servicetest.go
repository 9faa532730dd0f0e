// Package servicetest tells the two test tiers apart. make test runs
// every test against the real PostgreSQL and Redis; make test-fast (go
// test -short) runs only those that need neither.
package servicetest

import "testing"

// Require leaves a test that needs PostgreSQL or Redis out of the fast
// tier. make test never passes -short, so there such a test always runs,
// and fails when a server is missing.
func Require(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs PostgreSQL and Redis: not in the fast tier (-short)")
	}
}

// Builds leaves a test that builds and starts the programs out of the
// fast tier, which must stay quick; make test always runs it.
func Builds(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the programs: not in the fast tier (-short)")
	}
}
