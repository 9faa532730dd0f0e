// Command fixedrate sends requests at a fixed rate (an open model: the
// rate holds whatever the latency) and reports the latency percentiles,
// for the latency at a stated fraction of the maximum rate.
//
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080/messages -rate 5000 -duration 10s
//	go run ./loadtest/fixedrate -url http://127.0.0.1:8080 -reactions ids.txt -rate 2000 -duration 10s
//
// With -reactions, each request posts a new reaction (a fresh user) on a
// message of the file, one id a line, in turn.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/messages", "URL to GET, or the API base with -reactions")
	reactions := flag.String("reactions", "", "file of message ids: POST a new reaction on each in turn instead of GET -url")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 256, "most requests in flight (and connections)")
	run := flag.String("run", "fixedrate", "tag of user ids, distinct per run")
	flag.Parse()
	var ids []string
	if *reactions != "" {
		f, err := os.Open(*reactions)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fixedrate:", err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				ids = append(ids, s)
			}
		}
		f.Close()
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		failed   atomic.Int64
		dropped  atomic.Int64
		inflight = make(chan struct{}, *conns)
		wg       sync.WaitGroup
		n        atomic.Int64
	)
	send := func() {
		defer func() { <-inflight; wg.Done() }()
		var req *http.Request
		if ids == nil {
			req, _ = http.NewRequest(http.MethodGet, *url, nil)
		} else {
			i := n.Add(1)
			body := fmt.Sprintf(`{"type":"like","user_id":"%s-%d","score":%d}`, *run, i, i%50+1)
			req, _ = http.NewRequest(http.MethodPost, *url+"/messages/"+ids[int(i)%len(ids)]+"/reactions", bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
		}
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
