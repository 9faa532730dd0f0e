// Command lagprobe measures how long a reaction takes to become visible in
// GET /messages/{id}: from the moment its POST is acknowledged (committed)
// until a read shows it, polling every millisecond. It can add background
// reaction traffic at a fixed rate, so the lag is measured at a stated
// load.
//
//	go run ./loadtest/lagprobe -base http://127.0.0.1:8080 -load 500 -duration 30s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("base", "http://127.0.0.1:8080", "API base URL")
	load := flag.Int("load", 0, "background reactions per second, spread over -messages messages")
	spread := flag.Int("messages", 200, "messages the background load spreads over")
	probes := flag.Int("probes", 10, "probes per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to measure")
	flag.Parse()
	if err := run(*base, *load, *spread, *probes, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "lagprobe:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func call(method, url string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		err = json.Unmarshal(b, out)
	}
	return resp.StatusCode, err
}

func createMessage(base, text string) (string, error) {
	var m struct{ ID string }
	status, err := call("POST", base+"/messages", map[string]string{"text": text, "user_id": "lagprobe"}, &m)
	if err != nil || status != 201 {
		return "", fmt.Errorf("create message: %d %v", status, err)
	}
	return m.ID, nil
}

func run(base string, load, spread, probesPerSecond int, duration time.Duration) error {
	nonce := time.Now().UnixNano()
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	var sent, failed atomic.Int64
	if load > 0 {
		targets := make([]string, spread)
		for i := range targets {
			id, err := createMessage(base, "lagprobe load")
			if err != nil {
				return err
			}
			targets[i] = id
		}
		// Open-model load: a request starts every 1/load seconds, whether or
		// not earlier ones have finished.
		go func() {
			t := time.NewTicker(time.Second / time.Duration(load))
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				go func() {
					body := map[string]any{"type": "like", "user_id": fmt.Sprintf("load-%d-%d", nonce, n), "score": n%50 + 1}
					status, err := call("POST", base+"/messages/"+targets[n%len(targets)]+"/reactions", body, nil)
					sent.Add(1)
					if err != nil || status >= 300 {
						failed.Add(1)
					}
				}()
			}
		}()
	}

	probe, err := createMessage(base, "lagprobe probe")
	if err != nil {
		return err
	}
	var lags []time.Duration
	interval := time.Second / time.Duration(probesPerSecond)
	for n := 1; ctx.Err() == nil; n++ {
		start := time.Now()
		body := map[string]any{"type": "probe", "user_id": fmt.Sprintf("probe-%d", n)}
		status, err := call("POST", base+"/messages/"+probe+"/reactions", body, nil)
		if err != nil || status != 201 {
			return fmt.Errorf("probe %d: %d %v", n, status, err)
		}
		acked := time.Now()
		for {
			var v struct {
				ReactionCount int64 `json:"reaction_count"`
			}
			if _, err := call("GET", base+"/messages/"+probe, nil, &v); err != nil {
				return err
			}
			if v.ReactionCount >= int64(n) {
				lags = append(lags, time.Since(acked))
				break
			}
			if time.Since(acked) > 30*time.Second {
				return errors.New("a probe was not visible after 30s")
			}
			time.Sleep(time.Millisecond)
		}
		if rest := interval - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
	}
	slices.Sort(lags)
	pct := func(p float64) time.Duration { return lags[int(p*float64(len(lags)-1))] }
	fmt.Printf("background load: %d reactions/s requested, %d sent, %d failed, over %v\n", load, sent.Load(), failed.Load(), duration)
	fmt.Printf("visibility lag over %d probes: p50 %v  p95 %v  p99 %v  max %v\n",
		len(lags), pct(0.50).Round(100*time.Microsecond), pct(0.95).Round(100*time.Microsecond),
		pct(0.99).Round(100*time.Microsecond), lags[len(lags)-1].Round(100*time.Microsecond))
	return nil
}
