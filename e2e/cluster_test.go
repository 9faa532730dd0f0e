package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"messageapi/redis/redistest"
	"messageapi/redis/stream"
)

// clusterStack starts the API and three workers on a Redis Cluster, the
// reaction stream in 8 partitions leased to the workers.
func clusterStack(t *testing.T, cluster *redistest.Cluster) (*stack, []*proc) {
	t.Helper()
	env := stackEnv(t, "REDIS_CLUSTER_ADDRS="+strings.Join(cluster.Addrs(), ","), "STREAM_PARTITIONS=8",
		"PARTITION_LEASES=true", "LEASE_TTL=2s", "SWEEP_MIN_AGE=1s", "SWEEP_INTERVAL=200ms",
		"CLAIM_MIN_IDLE=3s", "FOLD_TIMEOUT=2s", "LOG_LEVEL=info")
	s := newStack(t, env, startProc(t, "api", env))
	workers := []*proc{s.worker, startProc(t, "worker", env), startProc(t, "worker", env)}
	s.api.waitReady()
	for _, w := range workers {
		w.waitReady()
	}
	return s, workers
}

// owned returns how many partitions each worker leases, from its metrics.
func owned(t *testing.T, workers []*proc) []float64 {
	t.Helper()
	out := make([]float64, len(workers))
	for i, w := range workers {
		out[i] = metricValue(callAdmin(t, "http://"+w.addr("admin")+"/metrics").raw, "messageapi_projection_partitions_owned")
	}
	return out
}

// TestOnRedisCluster runs the service on a Redis Cluster of three masters
// and three replicas, with three workers sharing 8 partitions: the whole
// contract; then, under traffic, the master of the hot message's partition
// dies (its replica takes over) and one worker dies (its partitions go to
// the others), and every count still ends exact.
func TestOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t)

	t.Run("contract", func(t *testing.T) {
		s, workers := clusterStack(t, cluster)
		eventually(t, 30*time.Second, func() (bool, string) {
			o := owned(t, workers)
			return o[0]+o[1]+o[2] == 8 && o[0] <= 3 && o[1] <= 3 && o[2] <= 3, fmt.Sprintf("partitions owned: %v", o)
		})
		endToEnd(t, s)

		// Two more API processes (endToEnd stopped the first): one's near
		// cache learns of a message posted through the other from the
		// cluster's pub/sub, and its live stream carries the message.
		a, b := startProc(t, "api", s.env), startProc(t, "api", s.env)
		a.waitReady()
		b.waitReady()
		baseB := "http://" + b.addr("api")
		if live := metricValue(callAdmin(t, "http://"+b.addr("admin")+"/metrics").raw, "messageapi_near_cache_live"); live != 1 {
			t.Errorf("the near cache is not subscribed on the cluster (live = %v)", live)
		}
		firstText(t, baseB)
		stream := openEvents(t, baseB+"/events", "")
		expect(t, call(t, "POST", "http://"+a.addr("api")+"/messages", "application/json", `{"text": "through the first API", "user_id": "alice"}`), 201)
		took := visibleWithin(t, baseB, "through the first API", nearCacheBound)
		t.Logf("the other API process served the new message after %v", took)
		eventually(t, 10*time.Second, func() (bool, string) {
			for _, e := range stream.received() {
				if e.Type == "message.new" && strings.Contains(string(e.Data), "through the first API") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events", len(stream.received()))
		})
	})

	t.Run("faults", func(t *testing.T) {
		s, workers := clusterStack(t, cluster)
		tr := startTraffic(t, s, 8, 4)
		tr.pause(2 * time.Second)

		// The master that holds the hot message's partition dies.
		prefix := ""
		for _, kv := range s.env {
			if v, ok := strings.CutPrefix(kv, "REDIS_PREFIX="); ok {
				prefix = v
			}
		}
		hot := fmt.Sprintf("{%sreactions:%d}", prefix, stream.PartitionOf(tr.messages[0], 8))
		master := cluster.MasterOf(hot)
		cluster.Kill(master)
		start := time.Now()
		cluster.WaitFailover(t, master)
		t.Logf("the master of %s failed over in %v", hot, time.Since(start).Round(time.Millisecond))
		tr.pause(2 * time.Second)

		// A worker dies; the others take its partitions.
		workers[0].kill()
		eventually(t, 30*time.Second, func() (bool, string) {
			o := owned(t, workers[1:])
			return o[0]+o[1] == 8, fmt.Sprintf("partitions owned by the live workers: %v", o)
		})
		tr.pause(2 * time.Second)
		writes, failures := tr.stop()
		t.Logf("%d of %d writes failed during the faults", failures, writes)
		if failures > writes/20 {
			t.Errorf("%d of %d writes failed; a Redis failover must not fail writes, which PostgreSQL holds", failures, writes)
		}
		tr.verify(t)
	})
}
