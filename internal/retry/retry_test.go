package retry

import (
	"testing"
	"time"
)

func TestPolicyGrowsToItsCap(t *testing.T) {
	p := Policy(100*time.Millisecond, time.Second)
	var last time.Duration
	for range 20 {
		last = p.NextBackOff()
		if last <= 0 || last > 1300*time.Millisecond {
			t.Fatalf("a wait of %v, want at most the cap plus jitter", last)
		}
	}
	if last < 700*time.Millisecond {
		t.Errorf("after 20 attempts the wait is %v, want about the 1s cap", last)
	}
}

func TestLoggedThinsARunOfFailures(t *testing.T) {
	var logged []int
	for n := 1; n <= 90; n++ {
		if Logged(n) {
			logged = append(logged, n)
		}
	}
	if len(logged) != 4 || logged[0] != 1 || logged[3] != 90 {
		t.Errorf("logged failures %v, want 1, 30, 60, 90", logged)
	}
}
