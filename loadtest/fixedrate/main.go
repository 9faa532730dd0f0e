// Command fixedrate sends requests at a fixed rate (an open model: the
// rate holds whatever the latency) and reports the latency percentiles,
// for the latency at a stated fraction of the maximum rate.
//
// Request i is due at start + i/rate, and its latency is timed from that
// due time, not from when it was sent: when every connection (-conns) is
// busy, a request waits for one and is sent late, and the wait counts in
// its latency, as it would for a real client. No request is dropped. The
// report counts the requests sent more than -late after their due time,
// and gives the percentiles of the send delay.
//
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -rate 5000 -duration 10s
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -readers users.txt -rate 5000
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -tokens tokens.txt -rate 5000
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -reactions ids.txt -rate 2000 -duration 10s
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -mix ids.txt -readers users.txt -rate 3000
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -paths channel-pages.txt -rate 50 -duration 60s
//
// Each GET of -url is made as a reader taken at random: with its user_id
// (-readers, a file of user ids) or with its bearer token (-tokens, a
// file of tokens), or anonymously. With -reactions, each request posts a
// new reaction (a fresh user) on a message of the file, one id a line, in
// turn. With -mix, requests are drawn in the proportions of the chat mix
// of loadtest/mixed.js (see mixWeights): personalised reads of the
// latest page, personalised reads of one message of the file, and
// reaction posts on those messages.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mixWeights are the shares of the kinds of request of -mix, per 1000:
// loadtest/mixed.js reads pages (first, later, cursor walks, jumps) at 65 %
// and single messages at 35 % of its read rate, and posts reactions
// (plain and unique) at 65 % of a write rate that is 20 % of it; its other
// writes (messages, deletes) are left out.
var mixWeights = struct{ page, message, react int }{page: 575, message: 310, react: 115}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/messages", "URL to GET, or the API base with -reactions and -mix")
	reactions := flag.String("reactions", "", "file of message ids: POST a new reaction on each in turn instead of GET -url")
	mix := flag.String("mix", "", "file of message ids: the chat mix of loadtest/mixed.js on them, reading as -readers or -tokens")
	paths := flag.String("paths", "", "file of paths: each GET is of -url followed by one of them at random (every channel's page 1, say)")
	readers := flag.String("readers", "", "file of user ids: each GET carries user_id of one at random")
	tokens := flag.String("tokens", "", "file of bearer tokens: each GET carries one at random")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 256, "most requests in flight (and connections)")
	late := flag.Duration("late", time.Millisecond, "a request sent more than this after its scheduled start counts as late")
	run := flag.String("run", "fixedrate", "tag of user ids, distinct per run")
	flag.Parse()
	if *rate < 1 || *conns < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "fixedrate: -rate and -conns must be at least 1, -duration positive")
		os.Exit(2)
	}
	g := &generator{base: *url, run: *run}
	g.posts = lines(*reactions)
	g.messages = lines(*mix)
	g.paths = lines(*paths)
	g.readers, g.tokens = lines(*readers), lines(*tokens)
	fmt.Println(send(g.next, *rate, *duration, *conns, *late))
}

// result is what a run measured. Latencies are timed from each request's
// scheduled start, not from when it was sent: a request that waited for a
// free connection counts that wait, as a client of an overloaded service
// would see it (no coordinated omission).
type result struct {
	rate      int
	conns     int
	lateAfter time.Duration
	scheduled int // requests due within the run
	sent      int // all of them: a request is sent late, never dropped
	failed    int
	late      int             // sent more than lateAfter after their scheduled start
	delay     []time.Duration // send delay of every request, sorted
	latency   []time.Duration // from the scheduled start to the end of the response, successful requests, sorted
	elapsed   time.Duration   // from the first scheduled start to the last response
}

// quantile returns the p-quantile of sorted durations, or 0 for none.
func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Round(10 * time.Microsecond)
}

// String is the report line. Its first fields, up to the latency
// percentiles, are those of earlier versions; the scheduled and late
// counts and the send delay were added.
func (r result) String() string {
	q := func(p float64) time.Duration { return quantile(r.latency, p) }
	d := func(p float64) time.Duration { return quantile(r.delay, p) }
	return fmt.Sprintf("%.0f/s asked, %.0f/s done, %d failed, %d not sent (all %d connections busy): p50 %v p90 %v p99 %v max %v"+
		" (latency from the scheduled start); %d scheduled, %d sent, %d late (sent more than %v after their scheduled start): send delay p50 %v p99 %v max %v",
		float64(r.rate), float64(len(r.latency))/r.elapsed.Seconds(), r.failed, r.scheduled-r.sent, r.conns, q(.5), q(.9), q(.99), q(1),
		r.scheduled, r.sent, r.late, r.lateAfter, d(.5), d(.99), d(1))
}

// send runs the open-model schedule: request i is due at start + i/rate,
// for every i whose due time falls within duration, whatever the latency.
// At most conns requests are in flight; a request due while all of them
// are busy waits for one and is sent late. Each latency runs from the
// request's due time, so that wait is in it.
func send(next func() *http.Request, rate int, duration time.Duration, conns int, lateAfter time.Duration) result {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	defer client.CloseIdleConnections()
	r := result{rate: rate, conns: conns, lateAfter: lateAfter}
	var (
		mu       sync.Mutex
		inflight = make(chan struct{}, conns)
		wg       sync.WaitGroup
	)
	do := func(req *http.Request, due time.Time) {
		defer func() { <-inflight; wg.Done() }()
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		d := time.Since(due)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || resp.StatusCode >= 300 {
			r.failed++
			return
		}
		r.latency = append(r.latency, d)
	}
	start := time.Now()
	for i := 0; ; i++ {
		// From the start, not from the previous due time: no drift, and a
		// late send leaves the times of those after it as they were.
		due := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		if due.Sub(start) >= duration {
			break
		}
		r.scheduled++
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		req := next()
		inflight <- struct{}{} // waits while every connection is busy
		delay := time.Since(due)
		if delay > lateAfter {
			r.late++
		}
		r.delay = append(r.delay, delay)
		r.sent++
		wg.Add(1)
		go do(req, due)
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	slices.Sort(r.latency)
	slices.Sort(r.delay)
	return r
}

// generator makes the requests of a run.
type generator struct {
	base            string
	run             string
	posts, messages []string // -reactions, -mix
	paths           []string // -paths
	readers, tokens []string
	n               atomic.Int64
}

func (g *generator) next() *http.Request {
	switch {
	case g.posts != nil:
		return g.react(g.posts, g.base)
	case g.messages != nil:
		switch k := rand.IntN(1000); {
		case k < mixWeights.page:
			return g.read(g.base + "/messages")
		case k < mixWeights.page+mixWeights.message:
			return g.read(g.base + "/messages/" + g.messages[rand.IntN(len(g.messages))])
		default:
			return g.react(g.messages, g.base)
		}
	case g.paths != nil:
		return g.read(g.base + g.paths[rand.IntN(len(g.paths))])
	}
	return g.read(g.base)
}

// read is a GET of url as a random reader.
func (g *generator) read(url string) *http.Request {
	if len(g.readers) > 0 {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "user_id=" + g.readers[rand.IntN(len(g.readers))]
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if len(g.tokens) > 0 {
		req.Header.Set("Authorization", "Bearer "+g.tokens[rand.IntN(len(g.tokens))])
	}
	return req
}

// react posts a new reaction, from a user of its own, on the next message.
func (g *generator) react(ids []string, base string) *http.Request {
	i := g.n.Add(1)
	body := fmt.Sprintf(`{"type":"like","user_id":"%s-%d","score":%d}`, g.run, i, i%50+1)
	req, _ := http.NewRequest(http.MethodPost, base+"/messages/"+ids[int(i)%len(ids)]+"/reactions", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// lines returns the non-empty lines of a file, or nil for no file.
func lines(path string) []string {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixedrate:", err)
		os.Exit(1)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		fmt.Fprintln(os.Stderr, "fixedrate:", path, "is empty")
		os.Exit(1)
	}
	return out
}
