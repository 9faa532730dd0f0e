// Command sselag measures live-event delivery: it holds -clients event
// streams (GET /events) spread over the API processes of -bases, posts
// reactions at -rate a second, and times each reaction event from its
// commit (the event's "at") to its arrival at each client. It reports the
// lag quantiles and whether every client received every event.
//
//	go run ./loadtest/sselag -bases http://127.0.0.1:8080,http://127.0.0.1:8081 -clients 100 -rate 200 -duration 30s
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bases := flag.String("bases", "http://127.0.0.1:8080", "API base URLs, separated by commas; streams and posts are spread over them")
	clients := flag.Int("clients", 50, "event streams held")
	rate := flag.Int("rate", 100, "reaction posts per second")
	messages := flag.Int("messages", 20, "messages the reactions go to")
	duration := flag.Duration("duration", 30*time.Second, "how long reactions are posted")
	flag.Parse()
	if err := run(strings.Split(*bases, ","), *clients, *rate, *messages, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "sselag:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func post(url string, body any) (int, []byte, error) {
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

// stream is one client's event stream and the lags it measured.
type stream struct {
	mu     sync.Mutex
	lags   []time.Duration
	ids    map[string]bool // reaction events seen, by stream id
	resets int
	err    error
}

func open(ctx context.Context, url string) (*stream, <-chan struct{}, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	s := &stream{ids: map[string]bool{}}
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var id, typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				typ = line[7:]
				if typ == "ready" {
					close(ready)
				}
			case strings.HasPrefix(line, "data: ") && strings.HasPrefix(typ, "reaction."):
				now := time.Now()
				var e struct{ At time.Time }
				if err := json.Unmarshal([]byte(line[6:]), &e); err == nil {
					s.mu.Lock()
					s.lags = append(s.lags, now.Sub(e.At))
					s.ids[id] = true
					s.mu.Unlock()
				}
			case strings.HasPrefix(line, "data: ") && typ == "reset":
				s.mu.Lock()
				s.resets++
				s.mu.Unlock()
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	select {
	case <-ready:
		return s, done, nil
	case <-done:
		return nil, nil, errors.New("stream ended before ready")
	case <-time.After(10 * time.Second):
		return nil, nil, errors.New("no ready event in 10s")
	}
}

func run(bases []string, clients, rate, messages int, duration time.Duration) error {
	var ids []string
	for i := range messages {
		status, body, err := post(bases[0]+"/messages", map[string]string{"text": fmt.Sprintf("sselag %d", i), "user_id": "sselag"})
		if err != nil || status != 201 {
			return fmt.Errorf("create a message: %d %v %s", status, err, body)
		}
		var m struct{ ID string }
		_ = json.Unmarshal(body, &m)
		ids = append(ids, m.ID)
	}
	filter := "message_id=" + strings.Join(ids, "&message_id=")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*stream, clients)
	dones := make([]<-chan struct{}, clients)
	for i := range clients {
		var err error
		if streams[i], dones[i], err = open(ctx, bases[i%len(bases)]+"/events?"+filter); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}

	var posted, failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	stop := time.After(duration)
	start := time.Now()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
			wg.Go(func() {
				base := bases[rand.IntN(len(bases))]
				m := ids[rand.IntN(len(ids))]
				status, _, err := post(base+"/messages/"+m+"/reactions", map[string]any{
					"type": []string{"like", "love", "clap", "wow"}[rand.IntN(4)], "user_id": fmt.Sprintf("u%d", rand.IntN(500)), "score": rand.IntN(9) + 1,
				})
				if err != nil || status >= 300 {
					failed.Add(1)
				} else {
					posted.Add(1)
				}
			})
		}
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second) // the last folds reach the clients
	cancel()
	for _, d := range dones {
		<-d
	}

	var all []time.Duration
	minSeen, maxSeen, resets := math.MaxInt, 0, 0
	union := map[string]bool{}
	for _, s := range streams {
		if s.err != nil {
			return fmt.Errorf("a stream failed: %w", s.err)
		}
		all = append(all, s.lags...)
		minSeen = min(minSeen, len(s.ids))
		maxSeen = max(maxSeen, len(s.ids))
		resets += s.resets
		for id := range s.ids {
			union[id] = true
		}
	}
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	fmt.Printf("%d reaction posts in %v (%.0f/s), %d failed; %d streams over %d API processes\n",
		posted.Load(), elapsed.Round(time.Millisecond), float64(posted.Load())/elapsed.Seconds(), failed.Load(), clients, len(bases))
	fmt.Printf("reaction events: %d distinct; each stream received from %d to %d of them; %d resets\n", len(union), minSeen, maxSeen, resets)
	fmt.Printf("commit-to-client lag over %d deliveries: p50 %v, p95 %v, p99 %v, max %v\n",
		len(all), q(0.50).Round(100*time.Microsecond), q(0.95).Round(100*time.Microsecond), q(0.99).Round(100*time.Microsecond), q(1).Round(100*time.Microsecond))
	if minSeen != len(union) {
		return fmt.Errorf("streams missed events: %d of %d distinct on the poorest stream", minSeen, len(union))
	}
	return nil
}
