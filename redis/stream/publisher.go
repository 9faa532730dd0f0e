package stream

import (
	"context"
	"time"

	"messageapi"
	"messageapi/redis"
)

// Publisher appends reaction changes to the stream in the background, so a
// write request never waits for Redis: it commits to PostgreSQL, hands the
// event over and answers. Events queued together go in one pipelined round
// trip. An event that cannot be appended (Redis down, queue full, process
// killed) is not lost: its change is in PostgreSQL and the sweeper folds
// it.
type Publisher struct {
	q *redis.Queue[messageapi.ReactionChanged]
}

// NewPublisher returns a Publisher on s. Run must be running for events to
// leave the queue.
func NewPublisher(s *Stream, cfg redis.QueueConfig) *Publisher {
	return &Publisher{q: redis.NewQueue(cfg, s.append, s.countDropped)}
}

// Publish queues e without blocking. It fails only when the queue is full.
func (p *Publisher) Publish(_ context.Context, e messageapi.ReactionChanged) error {
	return redis.Translate(p.q.Put(e), "publish")
}

// Run appends queued events until ctx is done, then appends what is still
// queued, for at most drain. Stop the producers (the HTTP server) before
// ctx ends, so nothing is queued after the final drain.
func (p *Publisher) Run(ctx context.Context, drain time.Duration) { p.q.Run(ctx, drain) }
