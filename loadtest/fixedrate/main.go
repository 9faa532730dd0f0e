// Command fixedrate sends requests at a fixed rate (an open model: the
// rate holds whatever the latency) and reports the latency percentiles,
// for the latency at a stated fraction of the maximum rate.
//
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -rate 5000 -duration 10s
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -readers users.txt -rate 5000
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -tokens tokens.txt -rate 5000
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -reactions ids.txt -rate 2000 -duration 10s
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -mix ids.txt -readers users.txt -rate 3000
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
	readers := flag.String("readers", "", "file of user ids: each GET carries user_id of one at random")
	tokens := flag.String("tokens", "", "file of bearer tokens: each GET carries one at random")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 256, "most requests in flight (and connections)")
	run := flag.String("run", "fixedrate", "tag of user ids, distinct per run")
	flag.Parse()
	g := &generator{base: *url, run: *run}
	g.posts = lines(*reactions)
	g.messages = lines(*mix)
	g.readers, g.tokens = lines(*readers), lines(*tokens)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		failed   atomic.Int64
		dropped  atomic.Int64
		inflight = make(chan struct{}, *conns)
		wg       sync.WaitGroup
	)
	send := func() {
		defer func() { <-inflight; wg.Done() }()
		req := g.next()
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		d := time.Since(start)
		if err != nil || resp.StatusCode >= 300 {
			failed.Add(1)
			return
		}
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	for next := start; time.Since(start) < *duration; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case inflight <- struct{}{}:
			wg.Add(1)
			go send()
		default:
			dropped.Add(1) // every connection busy: the service did not keep up
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	fmt.Printf("%.0f/s asked, %.0f/s done, %d failed, %d not sent (all %d connections busy): p50 %v p90 %v p99 %v max %v\n",
		float64(*rate), float64(len(lat))/elapsed.Seconds(), failed.Load(), dropped.Load(), *conns, q(.5), q(.9), q(.99), q(1))
}

// generator makes the requests of a run.
type generator struct {
	base            string
	run             string
	posts, messages []string // -reactions, -mix
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
