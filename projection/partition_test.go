package projection_test

import (
	"context"
	"fmt"

	"slices"
	"testing"
	"time"

	"messageapi/command"
	"messageapi/projection"
	"messageapi/redis/redistest"
	"messageapi/redis/stream"
)

// startOwner runs a worker that leases its share of the fixture's
// partitions, until the returned stop is called or the test ends.
func (f *fixture) startOwner(name string) (stop func()) {
	f.t.Helper()
	cfg := testConfig(name, noSweep)
	cfg.LeaseTTL = 900 * time.Millisecond
	d := f.deps(nil)
	d.Partitions = nil
	for i := range f.stream.Partitions() {
		d.Partitions = append(d.Partitions, f.stream.Consumer(i, projection.DefaultConfig().Group, name))
	}
	d.Leases = f.stream.Leases(name)
	w, err := projection.NewWorker(d, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.run(w, name)
}

// owners returns the owner of each partition ("" for none).
func (f *fixture) owners() []string {
	f.t.Helper()
	out := make([]string, f.stream.Partitions())
	for i := range out {
		v, err := f.rc.Redis().Get(context.Background(), f.stream.Key(i)+":owner").Result()
		if err == nil {
			out[i] = v
		}
	}
	return out
}

// TestPartitionsHaveOneOwnerEach: workers share the partitions, one owner
// each and a fair share per worker; the partitions of a worker that stops
// go to the others; every count is exact throughout.
func TestPartitionsHaveOneOwnerEach(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixtureOn(t, redistest.NewClient(t), 4)
	messages := make([]string, 12)
	for i := range messages {
		messages[i] = f.message()
	}
	stops := map[string]func(){}
	for _, name := range []string{"w1", "w2", "w3"} {
		stops[name] = f.startOwner(name)
	}
	balanced := func(workers ...string) (bool, string) {
		owners := f.owners()
		count := map[string]int{}
		for _, o := range owners {
			if !slices.Contains(workers, o) {
				return false, fmt.Sprintf("owners %v", owners)
			}
			count[o]++
		}
		share := (len(owners) + len(workers) - 1) / len(workers)
		for _, n := range count {
			if n > share {
				return false, fmt.Sprintf("owners %v: more than a share of %d", owners, share)
			}
		}
		return true, ""
	}
	eventually(t, 15*time.Second, func() (bool, string) { return balanced("w1", "w2", "w3") })

	react := func(round, n int) {
		write(t, 8, n, func(i int) error {
			score := i%4 + 1
			_, _, err := f.add.Handle(ctx, command.AddReaction{MessageID: messages[i%len(messages)],
				UserID: fmt.Sprintf("r%d-u%d", round, i%30), Type: []string{"like", "love"}[i%2], Score: &score})
			return err
		})
	}
	react(1, 600)
	f.waitConverged(30*time.Second, messages...)

	// w1 stops; its partitions go to w2 and w3.
	stops["w1"]()
	eventually(t, 15*time.Second, func() (bool, string) { return balanced("w2", "w3") })
	react(2, 600)
	f.waitConverged(30*time.Second, messages...)
	if errs := f.metric("messageapi_projection_errors_total"); errs != 0 {
		t.Errorf("%v failed folds", errs)
	}
}

// TestPartitionOfSpreadsMessages: a message's changes always go to one
// partition, and messages spread over all of them.
func TestPartitionOfSpreadsMessages(t *testing.T) {
	seen := map[int]int{}
	for i := range 800 {
		id := fmt.Sprintf("01a21b77-d171-76be-88ab-%012d", i)
		p := stream.PartitionOf(id, 8)
		if again := stream.PartitionOf(id, 8); again != p || p < 0 || p >= 8 {
			t.Fatalf("PartitionOf(%s) = %d, then %d", id, p, again)
		}
		seen[p]++
	}
	for p := range 8 {
		if seen[p] < 50 {
			t.Errorf("partition %d got %d of 800 messages: %v", p, seen[p], seen)
		}
	}
	if stream.PartitionOf("anything", 1) != 0 {
		t.Error("one partition, yet not 0")
	}
}
