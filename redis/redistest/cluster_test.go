package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"messageapi/internal/servicetest"
)

func TestStartClusterHasThreeMastersEachWithAReplica(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)

	addrs := c.Addrs()
	if len(addrs) != 6 || len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 6 {
		t.Fatalf("Addrs() = %v, want 6 distinct addresses", addrs)
	}
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < 1 || p+busOffset > 65535 {
			t.Errorf("address %s: want 127.0.0.1 and a port whose bus port fits", a)
		}
	}

	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("Masters() = %v, want 3", masters)
	}
	replicated := map[string]int{} // master id -> replicas
	ids := map[string]string{}     // master id -> addr
	for _, e := range c.view() {
		switch {
		case e.isMaster():
			ids[e.id] = e.addr
		case slices.Contains(e.flags, "slave"):
			replicated[e.masterID]++
		default:
			t.Errorf("node %s has flags %v", e.addr, e.flags)
		}
	}
	for id, addr := range ids {
		if replicated[id] != 1 {
			t.Errorf("master %s has %d replicas, want 1", addr, replicated[id])
		}
		if !slices.Contains(masters, addr) {
			t.Errorf("master %s is not in Masters() %v", addr, masters)
		}
	}

	ctx := context.Background()
	cc := c.Client(t)
	for _, key := range []string{"a", "b", "c", "{user:1}:x"} {
		if err := cc.Set(ctx, key, "v-"+key, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != "v-"+key {
			t.Fatalf("GET %s = %q, %v; want %q", key, got, err, "v-"+key)
		}
		if m := c.MasterOf(key); !slices.Contains(masters, m) {
			t.Errorf("MasterOf(%q) = %s, not a master of %v", key, m, masters)
		}
	}
	// The three keys land on three shards: MasterOf follows the slot.
	spread := map[string]bool{c.MasterOf("a"): true, c.MasterOf("b"): true, c.MasterOf("c"): true}
	if len(spread) != 3 {
		t.Errorf("keys a, b, c map to masters %v; want three different ones", spread)
	}
}

func TestClusterFailoverKeepsKeyReadableAndWritable(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)
	ctx := context.Background()
	cc := c.Client(t)

	const key = "reactions:{3}"
	if err := cc.Set(ctx, key, "before", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	c.WaitReplicated(t)

	dead := c.MasterOf(key)
	c.Kill(dead)
	began := time.Now()
	c.WaitFailover(t, dead)
	t.Logf("failover of %s took %v", dead, time.Since(began).Round(time.Millisecond))

	promoted := c.MasterOf(key)
	if promoted == dead {
		t.Fatalf("MasterOf(%q) is still the dead node %s", key, dead)
	}
	if masters := c.Masters(); len(masters) != 3 || slices.Contains(masters, dead) || !slices.Contains(masters, promoted) {
		t.Fatalf("Masters() = %v after the failover of %s to %s", masters, dead, promoted)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "before" {
		t.Fatalf("GET after failover = %q, %v; want %q", got, err, "before")
	}
	if err := cc.Set(ctx, key, "after", 0).Err(); err != nil {
		t.Fatalf("SET after failover: %v", err)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "after" {
		t.Fatalf("GET after failover = %q, %v; want %q", got, err, "after")
	}

	// The dead node comes back as a replica of the shard it led.
	c.Restart(dead)
	if masters := c.Masters(); len(masters) != 3 || slices.Contains(masters, dead) {
		t.Fatalf("Masters() = %v after %s restarted; want it a replica", masters, dead)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "after" {
		t.Fatalf("GET after restart = %q, %v; want %q", got, err, "after")
	}
}

func TestClusterCleanupStopsEveryNode(t *testing.T) {
	t.Parallel()
	servicetest.Require(t)
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := StartCluster(t)
		for _, n := range c.nodes {
			pids = append(pids, n.cmd.Process.Pid)
		}
		// A killed node is stopped already; cleanup must cope with it.
		c.Kill(c.Addrs()[0])
	})
	if len(pids) != 6 {
		t.Fatalf("got %d pids, want 6", len(pids))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("redis-server pid %d is still there after cleanup (kill -0: %v)", pid, err)
		}
	}
}

// fatalRecorder stands in for a test to catch what StartCluster reports.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartClusterFailsWithoutRedisServerNamingThePackages(t *testing.T) {
	servicetest.Require(t)
	t.Setenv("PATH", t.TempDir())
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartCluster(rec)
		t.Error("StartCluster returned without redis-server on the PATH")
	}()
	<-done
	for _, want := range []string{"redis-server", "Debian packages redis-server and redis-tools"} {
		if !strings.Contains(rec.msg, want) {
			t.Errorf("failure %q does not mention %q", rec.msg, want)
		}
	}
}
