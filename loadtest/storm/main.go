// Command storm measures live events under reconnect storms, against API
// and worker binaries it starts itself on a database and Redis of the
// caller's choosing (both emptied first):
//
//   - storm: -streams streams, each filtered to one message, resume at
//     once right after the API restarts, all from the id -back events
//     back; each must get those -back events (and any posted since), in
//     order and none twice, and ready;
//   - flood: -stalled streams from -addrs loopback addresses resume from
//     0-0 on a feed of -feed events and never read, while a reading
//     client resumes from 0-0 too and a bystander reads, posts and
//     streams.
//
// For each it prints time to ready (p50/p99/max), failures, the highest
// state of the API's Redis breaker (0 closed, 1 half-open, 2 open), the
// XRANGE and XREVRANGE calls Redis served, the API's RSS, and the
// bystander's results.
//
//	go build -o /tmp/api ./cmd/api && go build -o /tmp/worker ./cmd/worker
//	go run ./loadtest/storm -api /tmp/api -worker /tmp/worker \
//	    -database-url postgres://.../message-api-storm -redis-url redis://127.0.0.1:6379/13
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

type options struct {
	api, worker, dbURL, redisURL, apiArgs string
	streams, back, stalled, addrs, feed   int
	deadline, hold                        time.Duration
	scenario                              string
}

const (
	base   = "http://127.0.0.1:18180"
	admin  = "http://127.0.0.1:16160"
	prefix = "storm:"
)

func main() {
	var o options
	flag.StringVar(&o.api, "api", "", "the API binary")
	flag.StringVar(&o.worker, "worker", "", "the worker binary")
	flag.StringVar(&o.dbURL, "database-url", "", "a database of its own: it is migrated and emptied")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/13", "a Redis database of its own: it is emptied")
	flag.StringVar(&o.apiArgs, "api-args", "", "more arguments of the API, separated by spaces")
	flag.IntVar(&o.streams, "streams", 2000, "storm: streams that resume at once")
	flag.IntVar(&o.back, "back", 50, "storm: how many events back they resume from")
	flag.IntVar(&o.stalled, "stalled", 500, "flood: streams that resume from 0-0 and never read")
	flag.IntVar(&o.addrs, "addrs", 250, "flood: loopback addresses they come from")
	flag.IntVar(&o.feed, "feed", 7000, "flood: events in the feed")
	flag.DurationVar(&o.deadline, "deadline", 30*time.Second, "how long a stream may take to get ready")
	flag.DurationVar(&o.hold, "hold", 15*time.Second, "flood: how long the stalled streams are held")
	flag.StringVar(&o.scenario, "scenario", "storm,flood", "which scenarios, separated by commas")
	flag.Parse()
	if o.api == "" || o.worker == "" || o.dbURL == "" {
		fmt.Fprintln(os.Stderr, "storm: -api, -worker and -database-url are required")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

func run(o options) error {
	ctx := context.Background()
	rdb := goredis.NewClient(mustRedisOptions(o.redisURL))
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	common := []string{"-database-url", o.dbURL, "-redis-url", o.redisURL, "-redis-prefix", prefix}
	if out, err := exec.Command(o.api, append([]string{"migrate"}, common...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v: %s", err, out)
	}
	work, err := os.MkdirTemp("", "storm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	worker, err := start(o.worker, append(common, "-admin-addr", "127.0.0.1:16161"), work+"/worker.log")
	if err != nil {
		return err
	}
	defer stop(worker)
	apiArgs := append(append(common, "-addr", "127.0.0.1:18180", "-admin-addr", "127.0.0.1:16160",
		"-max-conns-per-client", "4096", "-access-log-level", "debug"), strings.Fields(o.apiArgs)...)
	api, err := start(o.api, apiArgs, work+"/api.log")
	if err != nil {
		return err
	}
	defer func() { stop(api) }()
	if err := waitReady(admin, 20*time.Second); err != nil {
		return err
	}
	feedKey := "{" + prefix + "events}"
	for _, scenario := range strings.Split(o.scenario, ",") {
		switch scenario {
		case "storm":
			if api, err = storm(ctx, o, rdb, feedKey, api, apiArgs, work); err != nil {
				return err
			}
		case "flood":
			if err := flood(ctx, o, rdb, feedKey); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown scenario %q", scenario)
		}
	}
	return nil
}

func mustRedisOptions(url string) *goredis.Options {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storm: -redis-url:", err)
		os.Exit(2)
	}
	return opts
}

func start(bin string, args []string, logFile string) (*exec.Cmd, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd, cmd.Start()
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

func waitReady(adminURL string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(adminURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the API did not get ready")
}

func postJSON(url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	resp, err := client.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes(), err
}

func newMessage() (string, error) {
	status, body, err := postJSON(base+"/messages", map[string]string{"text": "storm", "user_id": "storm"})
	if err != nil || status != 201 {
		return "", fmt.Errorf("POST /messages: %d %v %s", status, err, body)
	}
	var m struct{ ID string }
	return m.ID, json.Unmarshal(body, &m)
}

// react posts n reactions to message from distinct users, with workers
// at once, and waits until the feed holds at least want entries.
func react(ctx context.Context, rdb *goredis.Client, key, message string, n, want int) error {
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				status, _, err := postJSON(base+"/messages/"+message+"/reactions", map[string]string{"type": "like", "user_id": "u" + strconv.FormatInt(i, 10)})
				if err != nil || status/100 != 2 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("%d reaction posts failed", failed.Load())
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l, err := rdb.XLen(ctx, key).Result(); err == nil && l >= int64(want) {
			return nil
		}
	}
	return fmt.Errorf("the feed did not reach %d events", want)
}

// rangeCalls is how many XRANGE and XREVRANGE calls Redis has served.
func rangeCalls(ctx context.Context, rdb *goredis.Client) int64 {
	info, _ := rdb.Info(ctx, "commandstats").Result()
	var total int64
	for line := range strings.SplitSeq(info, "\r\n") {
		if strings.HasPrefix(line, "cmdstat_xrange:") || strings.HasPrefix(line, "cmdstat_xrevrange:") {
			_, rest, _ := strings.Cut(line, "calls=")
			n, _ := strconv.ParseInt(strings.Split(rest, ",")[0], 10, 64)
			total += n
		}
	}
	return total
}

// monitor samples the API's metrics until stopped: the highest breaker
// state and RSS seen.
type monitor struct {
	breaker, rss atomic.Int64
	stop         chan struct{}
	done         sync.WaitGroup
}

func watch() *monitor {
	m := &monitor{stop: make(chan struct{})}
	m.done.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	})
	return m
}

func (m *monitor) sample() {
	resp, err := client.Get(admin + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "messageapi_redis_breaker_state":
			maxInto(&m.breaker, int64(v))
		case "process_resident_memory_bytes":
			maxInto(&m.rss, int64(v))
		}
	}
}

func maxInto(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

func (m *monitor) end() { close(m.stop); m.done.Wait() }

// resume is one EventSource-like client: it connects, retrying as a
// browser does (on a network error or a stream that ends, after retry;
// never after a status other than 200),
// until it has read ready or the deadline passes. It reports the events
// of message before ready, and how many times it reconnected.
func resume(ctx context.Context, hc *http.Client, url, lastID string) (events []string, reconnects int, err error) {
	retry := 2 * time.Second
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == 200 {
			events, err = readUntilReady(resp)
			resp.Body.Close()
			if !errors.Is(err, errEnded) {
				return events, reconnects, err
			}
		}
		wait := retry
		if err == nil && resp.StatusCode != 200 {
			// An EventSource fails for good on any other status.
			resp.Body.Close()
			return nil, reconnects, fmt.Errorf("status %d: a browser would not retry", resp.StatusCode)
		}
		reconnects++
		wait += time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil, reconnects, ctx.Err()
}

func readUntilReady(resp *http.Response) ([]string, error) {
	var events []string
	var id string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case line == "event: ready":
			return events, nil
		case line == "event: reset":
			return events, errors.New("reset")
		case strings.HasPrefix(line, "event: "):
			events = append(events, id)
		}
	}
	return events, errEnded // as an EventSource does, the caller reconnects
}

var errEnded = errors.New("the stream ended before ready")

func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("p50 %v, p99 %v, max %v", q(0.5), q(0.99), ds[len(ds)-1].Round(time.Millisecond))
}

// bystander reads pages and posts reactions at a steady pace until
// stopped, and reports failures and the p99.
type bystander struct {
	ok, failed, posted atomic.Int64
	mu                 sync.Mutex
	lat                []time.Duration
	stop               chan struct{}
	done               sync.WaitGroup
}

func startBystander(message string) *bystander {
	b := &bystander{stop: make(chan struct{})}
	b.done.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			case <-t.C:
			}
			began := time.Now()
			var status int
			var err error
			if i%2 == 0 {
				var resp *http.Response
				if resp, err = client.Get(base + "/messages?user_id=bystander"); err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
			} else {
				status, _, err = postJSON(base+"/messages/"+message+"/reactions", map[string]any{"type": "clap", "user_id": "bystander-" + strconv.Itoa(i)})
			}
			b.mu.Lock()
			b.lat = append(b.lat, time.Since(began))
			b.mu.Unlock()
			if err != nil || status/100 != 2 {
				b.failed.Add(1)
			} else {
				b.ok.Add(1)
				if i%2 == 1 {
					b.posted.Add(1)
				}
			}
		}
	})
	return b
}

func (b *bystander) end() string {
	close(b.stop)
	b.done.Wait()
	return fmt.Sprintf("%d ok, %d failed, %s", b.ok.Load(), b.failed.Load(), quantiles(b.lat))
}

func storm(ctx context.Context, o options, rdb *goredis.Client, key string, api *exec.Cmd, apiArgs []string, work string) (*exec.Cmd, error) {
	message, err := newMessage()
	if err != nil {
		return api, err
	}
	if err := react(ctx, rdb, key, message, o.back+10, o.back+11); err != nil {
		return api, err
	}
	tail, err := rdb.XRevRangeN(ctx, key, "+", "-", int64(o.back)+1).Result()
	if err != nil || len(tail) != o.back+1 {
		return api, fmt.Errorf("the feed's tail: %d entries, %v", len(tail), err)
	}
	from := tail[o.back].ID
	var want []string // what each stream missed, oldest first; later events may follow
	for i := o.back - 1; i >= 0; i-- {
		want = append(want, tail[i].ID)
	}

	stop(api) // the restart
	before := rangeCalls(ctx, rdb)
	began := time.Now()
	api, err = start(o.api, apiArgs, work+"/api.log")
	if err != nil {
		return api, err
	}
	mon := watch()
	by := startBystander(message)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: o.streams}}
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	var mu sync.Mutex
	var ready []time.Duration
	failures := map[string]int{}
	var wg sync.WaitGroup
	for range o.streams {
		wg.Go(func() {
			events, _, err := resume(ctx, hc, base+"/events?message_id="+message, from)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures[err.Error()]++
			case len(events) < o.back || !slices.Equal(events[:o.back], want):
				failures[fmt.Sprintf("%d events, not the %d missed", len(events), o.back)]++
			case !slices.IsSortedFunc(events, compareIDs) || len(slices.Compact(slices.Clone(events))) != len(events):
				failures["events out of order or twice"]++
			default:
				ready = append(ready, time.Since(began))
			}
		})
	}
	wg.Wait()
	byResult := by.end()
	mon.end()
	fmt.Printf("storm: %d streams resuming %d events back after a restart: %d ready (%s), failures %v\n",
		o.streams, o.back, len(ready), quantiles(ready), failures)
	fmt.Printf("storm: breaker state at most %d; Redis XRANGE+XREVRANGE calls %d; API RSS at most %.0f MiB; bystander %s\n",
		mon.breaker.Load(), rangeCalls(context.Background(), rdb)-before, float64(mon.rss.Load())/(1<<20), byResult)
	return api, nil
}

func flood(ctx context.Context, o options, rdb *goredis.Client, key string) error {
	message, err := newMessage()
	if err != nil {
		return err
	}
	if l, _ := rdb.XLen(ctx, key).Result(); int(l) < o.feed {
		if err := react(ctx, rdb, key, message, o.feed-int(l), o.feed); err != nil {
			return err
		}
	}
	feedLen, _ := rdb.XLen(ctx, key).Result()
	rss := watch()
	time.Sleep(500 * time.Millisecond)
	rssBefore := rss.rss.Load()

	// The bystander's live stream: every reaction event of its message.
	liveCtx, endLive := context.WithCancel(ctx)
	defer endLive()
	var live atomic.Int64
	liveReady := make(chan struct{})
	go func() {
		req, _ := http.NewRequestWithContext(liveCtx, "GET", base+"/events?message_id="+message, nil)
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			close(liveReady)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			switch sc.Text() {
			case "event: ready":
				close(liveReady)
			case "event: reaction.new":
				live.Add(1)
			}
		}
	}()
	<-liveReady
	before := rangeCalls(ctx, rdb)
	by := startBystander(message)

	// Stalled streams: a tiny receive buffer, and nothing read.
	var conns []net.Conn
	var mu sync.Mutex
	opened := map[int]int{}
	var wg sync.WaitGroup
	for i := range o.stalled {
		wg.Go(func() {
			k := i % o.addrs
			local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+k/250), byte(2+k%250))}
			c, err := (&net.Dialer{LocalAddr: local, Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}).Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				mu.Lock()
				opened[-1]++
				mu.Unlock()
				return
			}
			fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: storm\r\nLast-Event-ID: 0-0\r\n\r\n")
			status := make([]byte, 12)
			_, _ = c.Read(status) // "HTTP/1.1 200": the stream began, or was refused
			code, _ := strconv.Atoi(string(status[9:12]))
			mu.Lock()
			opened[code]++
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()

	// A reading client resumes from 0-0 meanwhile.
	readerCtx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	readerStart := time.Now()
	events, refusals, readerErr := resume(readerCtx, &http.Client{}, base+"/events", "0-0")
	inOrder := slices.IsSortedFunc(events, compareIDs) && len(slices.Compact(slices.Clone(events))) == len(events)
	readerTook := time.Since(readerStart)
	time.Sleep(max(0, o.hold-time.Since(readerStart)))
	byResult := by.end()
	posted := by.posted.Load()
	time.Sleep(time.Second) // the last folds reach the live stream
	for _, c := range conns {
		c.Close()
	}
	rss.end()
	fmt.Printf("flood: %d stalled streams from 0-0 on a feed of %d events (from %d addresses): statuses %v\n",
		o.stalled, feedLen, o.addrs, opened)
	fmt.Printf("flood: a reader from 0-0 got %d events in %v (in order, none twice: %v) after %d reconnects, err %v\n",
		len(events), readerTook.Round(time.Millisecond), inOrder, refusals, readerErr)
	fmt.Printf("flood: breaker state at most %d; Redis XRANGE+XREVRANGE calls %d; API RSS %.0f -> at most %.0f MiB; bystander %s; its live stream got %d new reactions of %d posted\n",
		rss.breaker.Load(), rangeCalls(context.Background(), rdb)-before, float64(rssBefore)/(1<<20), float64(rss.rss.Load())/(1<<20), byResult, live.Load(), posted)
	return nil
}

func compareIDs(a, b string) int {
	parse := func(s string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(s, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		q, _ := strconv.ParseUint(seq, 10, 64)
		return m, q
	}
	am, aq := parse(a)
	bm, bq := parse(b)
	switch {
	case am != bm:
		return cmpU(am, bm)
	default:
		return cmpU(aq, bq)
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
