package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi/internal/servicetest"
)

// Settings of every cluster StartCluster makes.
const (
	clusterMasters  = 3
	clusterReplicas = 3
	clusterSlots    = 16384

	// NodeTimeout is the cluster-node-timeout of the nodes: a master that
	// has not answered for this long is failed over, so a failover in a
	// test takes a few seconds. Longer stalls of a loaded machine are
	// rare; a spurious failover still leaves a working cluster.
	NodeTimeout = 2 * time.Second

	// busOffset is how far above its port a node listens for the cluster
	// bus, fixed by Redis.
	busOffset = 10000

	startTimeout    = 30 * time.Second
	failoverTimeout = 30 * time.Second
)

// Cluster is a Redis Cluster of three masters and three replicas, each
// node a redis-server of the machine in a directory of its own, on
// 127.0.0.1. Several clusters can run at once: each takes its own ports.
//
// Methods that take no testing.TB report failures to the test that
// started the cluster, so call them from its goroutine.
type Cluster struct {
	tb    testing.TB
	mu    sync.Mutex
	nodes []*clusterNode
}

// clusterNode is one redis-server of a Cluster; a killed node keeps its
// port and directory, so it can be restarted as the same node.
type clusterNode struct {
	addr  string
	port  int
	dir   string
	admin *goredis.Client
	cmd   *exec.Cmd     // nil while the node is down
	done  chan struct{} // closed when cmd has exited
}

// StartCluster starts a Redis Cluster and returns once every node agrees
// that all slots are served and every replica is in sync with its master.
// Every node is stopped when the test ends. redis-server and redis-cli
// must be installed: without them the test fails.
//
// The nodes keep nothing on disk (no RDB, no AOF), like the Redis of the
// other tests. cluster-require-full-coverage is off: while a master is
// down, the other masters keep serving their slots, as a production
// cluster should let the partitions that are still up carry on, and
// tests can observe that.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	servicetest.Require(tb)
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("redistest: a Redis Cluster needs %s (Debian packages redis-server and redis-tools): %v", bin, err)
		}
	}
	began := time.Now()
	c := &Cluster{tb: tb}
	nodes := make([]*clusterNode, clusterMasters+clusterReplicas)
	dirs := make([]string, len(nodes))
	for i := range dirs {
		dirs[i] = tb.TempDir()
	}
	// Cleanups run last first: the nodes stop before their directories
	// are removed, or a node still writing leaves one not empty.
	tb.Cleanup(c.stop)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i], errs[i] = c.startNewNode(dirs[i]) })
	}
	wg.Wait()
	c.mu.Lock()
	for _, n := range nodes {
		if n != nil {
			c.nodes = append(c.nodes, n)
		}
	}
	c.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("redistest: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s%s", err, out, c.logTails())
	}
	c.waitFor(ctx, "the cluster to form", c.healthy)
	tb.Logf("redistest: Redis Cluster on %s ready in %v", strings.Join(c.Addrs(), " "), time.Since(began).Round(time.Millisecond))
	return c
}

// Addrs returns the address (host:port) of every node, masters and
// replicas, in a fixed order: the seed list for a cluster client.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Client returns a cluster client seeded with every node, closed when tb
// ends. It keeps working across failovers: it follows MOVED redirects,
// and it reloads its slot map every second. go-redis reloads the map on
// a redirect, but a dead master sends none (dialing it just fails), and
// by default the map is reloaded only once a minute.
func (c *Cluster) Client(tb testing.TB) *goredis.ClusterClient {
	tb.Helper()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:                      c.Addrs(),
		DialTimeout:                time.Second,
		ReadTimeout:                2 * time.Second,
		WriteTimeout:               2 * time.Second,
		ClusterStateReloadInterval: time.Second,
	})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Masters returns the addresses of the masters that serve slots, sorted,
// as one live node sees them. A master that this node already holds as
// failed (or possibly failed) is left out.
func (c *Cluster) Masters() []string {
	c.tb.Helper()
	var masters []string
	for _, e := range c.view() {
		if e.isMaster() && !e.failing() && len(e.slots) > 0 {
			masters = append(masters, e.addr)
		}
	}
	slices.Sort(masters)
	return masters
}

// MasterOf returns the address of the master that serves key's slot, as
// one live node sees it.
func (c *Cluster) MasterOf(key string) string {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := c.liveNode()
	slot, err := n.admin.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.tb.Fatalf("redistest: CLUSTER KEYSLOT on %s: %v", n.addr, err)
	}
	entries, err := n.clusterNodes(ctx)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	for _, e := range entries {
		if e.isMaster() && e.serves(int(slot)) {
			return e.addr
		}
	}
	c.tb.Fatalf("redistest: %s knows no master for slot %d of %q", n.addr, slot, key)
	return ""
}

// Kill stops the node at addr with SIGKILL, as a crash: it has no time to
// tell anyone. It returns once the process has exited.
func (c *Cluster) Kill(addr string) {
	c.tb.Helper()
	n := c.node(c.tb, addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.cmd == nil {
		c.tb.Fatalf("redistest: Kill(%s): the node is not running", addr)
	}
	n.kill()
}

// Restart starts a killed node again on its port and directory. Its
// nodes.conf still names it, so it rejoins as the same node; having lost
// its data, it comes back as a replica of whichever master now serves its
// old slots, and resynchronises. Restart returns once the cluster is
// whole again: every node known, every slot served, every replica in sync.
func (c *Cluster) Restart(addr string) {
	c.tb.Helper()
	n := c.node(c.tb, addr)
	c.mu.Lock()
	running := n.cmd != nil
	c.mu.Unlock()
	if running {
		c.tb.Fatalf("redistest: Restart(%s): the node is running", addr)
	}
	if err := c.startNode(n); err != nil {
		c.tb.Fatalf("redistest: restart %s: %v", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c.waitFor(ctx, "the restarted node "+addr+" to rejoin", c.healthy)
}

// WaitFailover waits until every live node holds the node at deadAddr as
// failed and every slot is served by a live master again: for a dead
// master, one of its replicas has been promoted. It fails tb after 30
// seconds.
func (c *Cluster) WaitFailover(tb testing.TB, deadAddr string) {
	tb.Helper()
	dead := c.node(tb, deadAddr)
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()
	c.waitForTB(ctx, tb, "a failover of "+deadAddr, func(ctx context.Context) error {
		return c.failedOver(ctx, dead)
	})
}

// WaitReplicated waits until every live replica has applied everything
// its master had written when WaitReplicated was called, so that a write
// acknowledged before it survives a failover.
func (c *Cluster) WaitReplicated(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	targets := map[string]int64{} // master id -> its offset now
	n := c.liveNode()
	entries, err := n.clusterNodes(ctx)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	live := map[string]bool{}
	for _, n := range c.live() {
		live[n.addr] = true
	}
	for _, e := range entries {
		if !e.isMaster() || !live[e.addr] {
			continue
		}
		info, err := c.node(tb, e.addr).info(ctx, "replication")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		off, err := strconv.ParseInt(info["master_repl_offset"], 10, 64)
		if err != nil {
			tb.Fatalf("redistest: master_repl_offset of %s: %q", e.addr, info["master_repl_offset"])
		}
		targets[e.id] = off
	}
	c.waitForTB(ctx, tb, "the replicas to catch up", func(ctx context.Context) error {
		for _, e := range entries {
			target, ok := targets[e.masterID]
			if !ok || !live[e.addr] {
				continue
			}
			info, err := c.node(tb, e.addr).info(ctx, "replication")
			if err != nil {
				return err
			}
			if off, _ := strconv.ParseInt(info["slave_repl_offset"], 10, 64); off < target {
				return fmt.Errorf("replica %s is at offset %d of %d", e.addr, off, target)
			}
		}
		return nil
	})
}

// healthy reports what, if anything, keeps the cluster from being whole:
// every node up and agreeing on three masters that serve all slots, each
// with a replica whose link to it is up.
func (c *Cluster) healthy(ctx context.Context) error {
	for _, n := range c.nodes {
		info, entries, err := n.serving(ctx)
		if err != nil {
			return err
		}
		if err := wantInfo(n, info, "cluster_known_nodes", strconv.Itoa(len(c.nodes))); err != nil {
			return err
		}
		masters := map[string]bool{} // ids of masters serving slots
		for _, e := range entries {
			if e.failing() || e.link != "connected" {
				return fmt.Errorf("%s sees %s as %s, %s", n.addr, e.addr, strings.Join(e.flags, ","), e.link)
			}
			if e.isMaster() && len(e.slots) > 0 {
				masters[e.id] = true
			}
			if e.myself && !e.isMaster() {
				repl, err := n.info(ctx, "replication")
				if err != nil {
					return err
				}
				if repl["master_link_status"] != "up" {
					return fmt.Errorf("replica %s: master link %q", n.addr, repl["master_link_status"])
				}
			}
		}
		replicas := 0
		for _, e := range entries {
			if masters[e.masterID] {
				replicas++
			}
		}
		if len(masters) != clusterMasters || replicas != clusterReplicas {
			return fmt.Errorf("%s sees %d masters serving slots and %d replicas of them", n.addr, len(masters), replicas)
		}
	}
	return nil
}

// failedOver reports what, if anything, is left of the failover of dead.
func (c *Cluster) failedOver(ctx context.Context, dead *clusterNode) error {
	for _, n := range c.live() {
		if n == dead {
			continue
		}
		_, entries, err := n.serving(ctx)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.addr != dead.addr {
				continue
			}
			if !slices.Contains(e.flags, "fail") {
				return fmt.Errorf("%s sees %s as %s", n.addr, e.addr, strings.Join(e.flags, ","))
			}
			if len(e.slots) > 0 {
				return fmt.Errorf("%s still assigns slots to %s", n.addr, e.addr)
			}
		}
	}
	return nil
}

// serving reports whether n holds the cluster as ok with every slot
// served by a master it does not hold as failing, and returns its CLUSTER
// INFO and CLUSTER NODES.
func (n *clusterNode) serving(ctx context.Context) (map[string]string, []nodeEntry, error) {
	info, err := n.clusterInfo(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := wantInfo(n, info, "cluster_state", "ok"); err != nil {
		return nil, nil, err
	}
	if err := wantInfo(n, info, "cluster_slots_ok", strconv.Itoa(clusterSlots)); err != nil {
		return nil, nil, err
	}
	entries, err := n.clusterNodes(ctx)
	return info, entries, err
}

func wantInfo(n *clusterNode, info map[string]string, key, want string) error {
	if got := info[key]; got != want {
		return fmt.Errorf("%s: %s is %q, want %q", n.addr, key, got, want)
	}
	return nil
}

// waitFor polls check until it returns nil, and fails the test that
// started the cluster when ctx ends first.
func (c *Cluster) waitFor(ctx context.Context, what string, check func(context.Context) error) {
	c.tb.Helper()
	c.waitForTB(ctx, c.tb, what, check)
}

func (c *Cluster) waitForTB(ctx context.Context, tb testing.TB, what string, check func(context.Context) error) {
	tb.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("redistest: waiting for %s: %v%s", what, err, c.logTails())
		case <-tick.C:
		}
	}
}

// node returns the node at addr, failing tb when there is none.
func (c *Cluster) node(tb testing.TB, addr string) *clusterNode {
	tb.Helper()
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	tb.Fatalf("redistest: no node at %s in this cluster (%s)", addr, strings.Join(c.Addrs(), " "))
	return nil
}

// live returns the nodes that are running.
func (c *Cluster) live() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*clusterNode
	for _, n := range c.nodes {
		if n.cmd != nil {
			live = append(live, n)
		}
	}
	return live
}

func (c *Cluster) liveNode() *clusterNode {
	c.tb.Helper()
	live := c.live()
	if len(live) == 0 {
		c.tb.Fatalf("redistest: every node of the cluster is down")
	}
	return live[0]
}

// view returns the CLUSTER NODES of one live node.
func (c *Cluster) view() []nodeEntry {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := c.liveNode().clusterNodes(ctx)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	return entries
}

// startNewNode starts a node on free ports in dir. Another process may
// take a port between the check and redis-server's bind; then the server
// exits and other ports are tried.
func (c *Cluster) startNewNode(dir string) (*clusterNode, error) {
	var errs []error
	for range 10 {
		port, err := freeClusterPort()
		if err != nil {
			return nil, err
		}
		n := &clusterNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: dir}
		err = c.startNode(n)
		if err == nil {
			return n, nil
		}
		_ = n.admin.Close()
		errs = append(errs, err)
		_ = os.Remove(filepath.Join(dir, "nodes.conf"))
	}
	return nil, fmt.Errorf("start redis-server: %w", errors.Join(errs...))
}

// startNode runs redis-server for n and waits until it answers. The
// answer must come from this process, not from a server of another test
// that holds the port.
func (c *Cluster) startNode(n *clusterNode) error {
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(n.port),
		"--bind", "127.0.0.1",
		"--dir", n.dir,
		"--logfile", filepath.Join(n.dir, "redis.log"),
		"--save", "",
		"--appendonly", "no",
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout.Milliseconds())),
		"--cluster-require-full-coverage", "no",
		// A replica takes over however long it was cut off: a stalled
		// test machine must not leave a shard without a master.
		"--cluster-replica-validity-factor", "0",
		// Replicas sync at once instead of waiting for others to join.
		"--repl-diskless-sync-delay", "0",
	)
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if n.admin == nil {
		n.admin = goredis.NewClient(&goredis.Options{
			Addr:         n.addr,
			DialTimeout:  time.Second,
			ReadTimeout:  2 * time.Second,
			WriteTimeout: 2 * time.Second,
			MaxRetries:   -1,
			PoolSize:     2,
		})
	}
	c.mu.Lock()
	n.cmd, n.done = cmd, done
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := n.info(ctx, "server")
		if err == nil && info["process_id"] == strconv.Itoa(cmd.Process.Pid) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s is served by another process (%s)", n.addr, info["process_id"])
		}
		select {
		case <-done:
			c.mu.Lock()
			n.cmd = nil
			c.mu.Unlock()
			return fmt.Errorf("redis-server on %s exited:%s", n.addr, n.logTail())
		case <-ctx.Done():
			c.mu.Lock()
			n.kill()
			c.mu.Unlock()
			return fmt.Errorf("redis-server on %s does not answer: %v", n.addr, err)
		case <-tick.C:
		}
	}
}

// stop kills every node that is still running.
func (c *Cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.cmd != nil {
			n.kill()
		}
		if n.admin != nil {
			_ = n.admin.Close()
		}
	}
}

// kill sends SIGKILL and waits for the exit; the caller holds the
// cluster's lock.
func (n *clusterNode) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

// freeClusterPort returns a port on 127.0.0.1 that is free, and whose bus
// port (10000 above) is free too. Both stay below 32768, out of the
// kernel's ephemeral range, where another test's client connection could
// take one between this check and the node's bind.
func freeClusterPort() (int, error) {
	for range 1000 {
		port := 10000 + rand.IntN(32768-busOffset-10000)
		if portFree(port) && portFree(port+busOffset) {
			return port, nil
		}
	}
	return 0, errors.New("no free pair of ports for a cluster node")
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func (n *clusterNode) clusterInfo(ctx context.Context) (map[string]string, error) {
	s, err := n.admin.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER INFO on %s: %w", n.addr, err)
	}
	return parseInfo(s), nil
}

func (n *clusterNode) info(ctx context.Context, section string) (map[string]string, error) {
	s, err := n.admin.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s on %s: %w", section, n.addr, err)
	}
	return parseInfo(s), nil
}

func (n *clusterNode) clusterNodes(ctx context.Context) ([]nodeEntry, error) {
	s, err := n.admin.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", n.addr, err)
	}
	return parseClusterNodes(s)
}

// parseInfo reads the key:value lines of INFO and CLUSTER INFO.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// nodeEntry is one line of CLUSTER NODES:
// <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
type nodeEntry struct {
	id       string
	addr     string
	flags    []string
	myself   bool
	masterID string // "-" for a master
	link     string
	slots    [][2]int
}

func parseClusterNodes(s string) ([]nodeEntry, error) {
	var entries []nodeEntry
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES: short line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		e := nodeEntry{id: f[0], addr: addr, flags: strings.Split(f[2], ","), masterID: f[3], link: f[7]}
		e.myself = slices.Contains(e.flags, "myself")
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			from, err1 := strconv.Atoi(lo)
			to, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CLUSTER NODES: bad slots %q", r)
			}
			e.slots = append(e.slots, [2]int{from, to})
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func (e nodeEntry) isMaster() bool { return slices.Contains(e.flags, "master") }

// failing reports whether the node is held as failed, or possibly failed.
func (e nodeEntry) failing() bool {
	return slices.Contains(e.flags, "fail") || slices.Contains(e.flags, "fail?")
}

func (e nodeEntry) serves(slot int) bool {
	for _, r := range e.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// logTails returns the end of every node's log, to explain a failure.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n--- %s (%s)%s", n.addr, n.dir, n.logTail())
	}
	return b.String()
}

func (n *clusterNode) logTail() string {
	data, err := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	if err != nil {
		return " " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return "\n" + strings.Join(lines[max(0, len(lines)-15):], "\n")
}
