// Package retry holds the one retry policy of the programs and the one
// rule for logging a run of failures, so that every loop that waits out
// an outage behaves, and logs, alike.
package retry

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is the wait between attempts: from initial, doubling up to max,
// with 30% jitter so that processes recovering together do not retry in
// step.
func Policy(initial, max time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: max}
}

// Logged reports whether the failures-th failure in a row is logged: the
// first and then every 30th, so an outage does not flood the log.
func Logged(failures int) bool { return failures == 1 || failures%30 == 0 }
