package e2e_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi/redis/redistest"
)

// BenchmarkProjectionThroughput measures how fast workers fold a fixed
// backlog of reaction changes, by Redis (one node, or a local cluster of
// three masters), hot-message share, worker count, and whether workers
// lease partitions. Run it alone, on an
// idle machine:
//
//	go test ./e2e -run '^$' -bench ProjectionThroughput -benchtime 1x -timeout 30m
//
// PROJBENCH_BACKLOG sets the backlog (default 20000), PROJBENCH_PARTITIONS
// the stream's partitions (default 8). Each run writes the
// backlog through the API with no worker running, then starts the workers
// and times them until PostgreSQL holds no unprojected change. It reports
// events/s, and per event the fold transactions, and the rows the folds
// inserted, updated and deleted (from pg_stat_user_tables).
func BenchmarkProjectionThroughput(b *testing.B) {
	raceBinaries = false // measure the binaries as they ship
	backlog := 20000
	if v, err := strconv.Atoi(os.Getenv("PROJBENCH_BACKLOG")); err == nil && v > 0 {
		backlog = v
	}
	for _, mode := range []string{"single", "cluster"} {
		var redisEnv string
		if mode == "cluster" {
			redisEnv = "REDIS_CLUSTER_ADDRS=" + strings.Join(redistest.StartCluster(b).Addrs(), ",")
		}
		for _, hot := range []int{0, 50} {
			for _, workers := range []int{1, 2, 3} {
				for _, leases := range []bool{false, true} {
					if leases && workers == 1 {
						continue
					}
					name := fmt.Sprintf("%s/hot=%d%%/workers=%d", mode, hot, workers)
					if leases {
						name += "/leases"
					}
					b.Run(name, func(b *testing.B) {
						for range b.N {
							r := foldBacklog(b, redisEnv, backlog, hot, workers, leases)
							b.ReportMetric(r.perSecond, "events/s")
							b.ReportMetric(r.foldsPerEvent, "folds/event")
							b.ReportMetric(r.rowsPerEvent, "rows-written/event")
						}
					})
				}
			}
		}
	}
}

type foldRun struct {
	perSecond, foldsPerEvent, rowsPerEvent float64
}

// foldBacklog runs one measurement on a fresh schema and key prefix.
func foldBacklog(b *testing.B, redisEnv string, backlog, hotShare, workers int, leases bool) foldRun {
	b.Helper()
	partitions := cmp.Or(os.Getenv("PROJBENCH_PARTITIONS"), "8")
	env := stackEnv(b, "STREAM_PARTITIONS="+partitions, "LOG_LEVEL=info", "ACCESS_LOG_LEVEL=debug", "STREAM_MAX_LEN=1000000",
		"PARTITION_LEASES="+strconv.FormatBool(leases))
	if redisEnv != "" {
		env = append(env, redisEnv)
	}
	api := startProc(b, "api", env)
	api.waitReady()
	base := "http://" + api.addr("api")

	var messages []string
	for i := range 100 {
		r, err := try(http.MethodPost, base+"/messages", "application/json", fmt.Sprintf(`{"text": "m%d", "user_id": "bench"}`, i))
		if err != nil || r.status != 201 {
			b.Fatalf("create a message: %v %d", err, r.status)
		}
		messages = append(messages, r.body["id"].(string))
	}
	// The backlog, written with no worker running.
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for i := range next {
				m := messages[1+rng.IntN(len(messages)-1)]
				if rng.IntN(100) < hotShare {
					m = messages[0]
				}
				body := fmt.Sprintf(`{"type": %q, "user_id": "u%d", "score": %d}`, []string{"like", "love", "clap"}[i%3], i, i%9+1)
				if r, err := exchange(http.MethodPost, base+"/messages/"+m+"/reactions", http.Header{"Content-Type": {"application/json"}}, body, false); err != nil || r.status != 201 {
					b.Errorf("write %d: %v %d", i, err, r.status)
					return
				}
			}
		})
	}
	for i := range backlog {
		next <- i
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURLOf(env))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rowsWritten := func() int64 {
		var n int64
		if err := conn.QueryRow(ctx, `select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint from pg_stat_user_tables
			where schemaname = current_schema() and relname in ('reactions', 'message_views')`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	time.Sleep(2 * time.Second) // the API's backends have reported the writes
	_, _ = conn.Exec(ctx, `select pg_stat_clear_snapshot()`)
	before := rowsWritten()

	start := time.Now()
	procs := make([]*proc, workers)
	for i := range procs {
		procs[i] = startProc(b, "worker", env)
	}
	for {
		var left int
		if err := conn.QueryRow(ctx, `select count(*) from reaction_changes`).Scan(&left); err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d changes still unprojected after 10 minutes", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	folds := 0.0
	for _, w := range procs {
		folds += metricValue(callAdmin(b, "http://"+w.addr("admin")+"/metrics").raw, "messageapi_projection_batch_duration_seconds_count")
	}
	// A backend reports its table statistics at most once a second, and
	// when it exits: stop the workers, then read them.
	for _, w := range procs {
		w.kill()
	}
	api.kill()
	time.Sleep(2 * time.Second)
	_, _ = conn.Exec(ctx, `select pg_stat_clear_snapshot()`)
	after := rowsWritten()
	return foldRun{
		perSecond:     float64(backlog) / elapsed.Seconds(),
		foldsPerEvent: folds / float64(backlog),
		rowsPerEvent:  float64(after-before) / float64(backlog),
	}
}
