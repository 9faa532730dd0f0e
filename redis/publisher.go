package redis

import (
	"context"
	"errors"
	"time"

	"messageapi"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Queue is how many events may wait for Redis; when it is full, new
	// events are dropped (and swept). Default 10,000.
	Queue int
	// Batch is the most events appended in one round trip. Default 256.
	Batch int
}

// errQueueFull reports an event dropped because Redis fell behind.
var errQueueFull = errors.New("stream append queue is full")

// Publisher appends reaction changes to the stream in the background, so a
// write request never waits for Redis: it commits to PostgreSQL, hands the
// event over and answers. Events queued together go in one pipelined round
// trip. An event that cannot be appended (Redis down, queue full, process
// killed) is not lost: its change is in PostgreSQL and the sweeper folds
// it.
type Publisher struct {
	s     *Stream
	queue chan messageapi.ReactionChanged
	batch int
}

// NewPublisher returns a Publisher on s. Run must be running for events to
// leave the queue.
func NewPublisher(s *Stream, cfg PublisherConfig) *Publisher {
	if cfg.Queue <= 0 {
		cfg.Queue = 10_000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	return &Publisher{s: s, queue: make(chan messageapi.ReactionChanged, cfg.Queue), batch: cfg.Batch}
}

// Publish queues e without blocking. It fails only when the queue is full.
func (p *Publisher) Publish(_ context.Context, e messageapi.ReactionChanged) error {
	select {
	case p.queue <- e:
		return nil
	default:
		p.s.countDropped(1)
		return translate(errQueueFull, "publish")
	}
}

// Run appends queued events until ctx is done, then appends what is still
// queued, for at most drain. Stop the producers (the HTTP server) before
// ctx ends, so nothing is queued after the final drain. Appends run under
// the client's timeouts, not under ctx: a cancelled ctx must not drop the
// events it was about to append.
func (p *Publisher) Run(ctx context.Context, drain time.Duration) {
	appendCtx := context.WithoutCancel(ctx)
	for {
		select {
		case e := <-p.queue:
			p.flush(appendCtx, e)
		case <-ctx.Done():
			for deadline := time.Now().Add(drain); time.Now().Before(deadline); {
				select {
				case e := <-p.queue:
					p.flush(appendCtx, e)
				default:
					return
				}
			}
			return
		}
	}
}

// flush appends first and whatever else is queued, up to a batch, in one
// pipelined round trip.
func (p *Publisher) flush(ctx context.Context, first messageapi.ReactionChanged) {
	events := []messageapi.ReactionChanged{first}
	for len(events) < p.batch {
		select {
		case e := <-p.queue:
			events = append(events, e)
			continue
		default:
		}
		break
	}
	_ = p.s.append(ctx, events) // counted there; a failed append is swept
}
