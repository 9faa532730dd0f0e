package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// reactionKey names one reaction: a user's of one type on one message.
type reactionKey struct{ message, user, typ string }

// traffic is clients writing and deleting reactions until stopped, with an
// exact account of what they were acknowledged: each client owns its
// users, so it knows their reactions.
type traffic struct {
	s        *stack
	messages []string
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu               sync.Mutex
	expected         map[reactionKey]int
	writes, failures int
}

// startTraffic creates messages and starts clients writing reactions on
// them, the first client all on one hot message.
func startTraffic(t *testing.T, s *stack, messages, clients int) *traffic {
	t.Helper()
	tr := &traffic{s: s, expected: map[reactionKey]int{}}
	for i := range messages {
		tr.messages = append(tr.messages, s.createMessage(t, fmt.Sprintf("m%d", i)))
	}
	tr.ctx, tr.cancel = context.WithCancel(context.Background())
	for c := range clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			if err := tr.client(c); err != nil {
				// Reported off the test goroutine; the client stops, since it
				// no longer knows the state of its users.
				t.Errorf("client %d: %v", c, err)
			}
		}()
	}
	return tr
}

func (tr *traffic) client(c int) error {
	rng := rand.New(rand.NewPCG(uint64(c), 7))
	for tr.ctx.Err() == nil {
		k := reactionKey{tr.messages[rng.IntN(len(tr.messages))], fmt.Sprintf("c%d-u%d", c, rng.IntN(20)), []string{"like", "love", "clap"}[rng.IntN(3)]}
		if c == 0 {
			k.message = tr.messages[0] // one hot message
		}
		var r reply
		var err error
		if rng.IntN(10) == 0 {
			r, err = try(http.MethodDelete, tr.s.base+"/messages/"+k.message+"/reactions/"+k.typ+"?user_id="+k.user, "", "")
			tr.mu.Lock()
			if err == nil && (r.status == 204 || r.status == 404) {
				delete(tr.expected, k)
			}
		} else {
			score := rng.IntN(50) + 1
			r, err = try(http.MethodPost, tr.s.base+"/messages/"+k.message+"/reactions", "application/json",
				fmt.Sprintf(`{"type": %q, "user_id": %q, "score": %d}`, k.typ, k.user, score))
			tr.mu.Lock()
			if err == nil && (r.status == 201 || r.status == 200) {
				tr.expected[k] = score
			}
		}
		tr.writes++
		if err != nil || (r.status >= 300 && r.status != 404) {
			tr.failures++
		}
		tr.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// pause waits d, or until the traffic stops.
func (tr *traffic) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-tr.ctx.Done():
	}
}

// stop stops the clients and returns how many writes they made and how
// many failed.
func (tr *traffic) stop() (writes, failures int) {
	tr.cancel()
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.writes, tr.failures
}

// verify checks, once the clients have stopped, that PostgreSQL holds
// exactly the reactions the clients were acknowledged, and that every view
// converges to exactly their aggregate: nothing lost, nothing counted
// twice.
func (tr *traffic) verify(t *testing.T) {
	t.Helper()
	t.Logf("%d writes, %d reactions stand", tr.writes, len(tr.expected))
	conn, err := pgx.Connect(context.Background(), databaseURLOf(tr.s.env))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `select message_id::text, user_id, type, score from reactions where deleted_at is null`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[reactionKey]int{}
	for rows.Next() {
		var k reactionKey
		var score int
		if err := rows.Scan(&k.message, &k.user, &k.typ, &score); err != nil {
			t.Fatal(err)
		}
		stored[k] = score
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(stored) != fmt.Sprint(tr.expected) {
		var missing, extra, differ int
		for k, score := range tr.expected {
			switch got, ok := stored[k]; {
			case !ok:
				missing++
			case got != score:
				differ++
			}
		}
		for k := range stored {
			if _, ok := tr.expected[k]; !ok {
				extra++
			}
		}
		t.Fatalf("PostgreSQL holds %d reactions, the clients were acknowledged %d: %d missing, %d not acknowledged, %d with another score",
			len(stored), len(tr.expected), missing, extra, differ)
	}
	t.Logf("PostgreSQL holds the %d acknowledged reactions exactly", len(stored))
	for _, m := range tr.messages {
		counts, scores := map[string]any{}, map[string]any{}
		total := 0
		for k, score := range tr.expected {
			if k.message != m {
				continue
			}
			total++
			n, _ := counts[k.typ].(int)
			sc, _ := scores[k.typ].(int)
			counts[k.typ], scores[k.typ] = n+1, sc+score
		}
		checks := map[string]any{"reaction_count": total}
		for typ := range counts {
			checks["reaction_counts."+typ] = counts[typ]
			checks["reaction_scores."+typ] = scores[typ]
		}
		t.Logf("message %s: want %d reactions, counts %v, scores %v", m, total, counts, scores)
		tr.s.waitFor(t, "/messages/"+m, checks)
	}
}
