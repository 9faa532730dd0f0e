package redis

import (
	"cmp"
	"context"
	"errors"
	"time"

	"messageapi"
)

// PublisherConfig configures a Publisher, and the queue of a Feed.
type PublisherConfig struct {
	// Queue is how many events may wait for Redis; when it is full, new
	// events are dropped. Default 10,000.
	Queue int
	// Batch is the most events appended in one round trip. Default 256.
	Batch int
}

// errQueueFull reports an event dropped because Redis fell behind.
var errQueueFull = errors.New("append queue is full")

// Publisher appends reaction changes to the stream in the background, so a
// write request never waits for Redis: it commits to PostgreSQL, hands the
// event over and answers. Events queued together go in one pipelined round
// trip. An event that cannot be appended (Redis down, queue full, process
// killed) is not lost: its change is in PostgreSQL and the sweeper folds
// it.
type Publisher struct {
	q *batchQueue[messageapi.ReactionChanged]
}

// NewPublisher returns a Publisher on s. Run must be running for events to
// leave the queue.
func NewPublisher(s *Stream, cfg PublisherConfig) *Publisher {
	return &Publisher{q: newBatchQueue(cfg, s.append, s.countDropped)}
}

// Publish queues e without blocking. It fails only when the queue is full.
func (p *Publisher) Publish(_ context.Context, e messageapi.ReactionChanged) error {
	return translate(p.q.put(e), "publish")
}

// Run appends queued events until ctx is done, then appends what is still
// queued, for at most drain. Stop the producers (the HTTP server) before
// ctx ends, so nothing is queued after the final drain.
func (p *Publisher) Run(ctx context.Context, drain time.Duration) { p.q.run(ctx, drain) }

// batchQueue holds items for Redis and appends them in the background, in
// batches of what is waiting.
type batchQueue[T any] struct {
	queue   chan T
	batch   int
	appends func(context.Context, []T) error
	dropped func(int)
}

func newBatchQueue[T any](cfg PublisherConfig, appends func(context.Context, []T) error, dropped func(int)) *batchQueue[T] {
	return &batchQueue[T]{
		queue: make(chan T, cmp.Or(max(cfg.Queue, 0), 10_000)), batch: cmp.Or(max(cfg.Batch, 0), 256),
		appends: appends, dropped: dropped,
	}
}

// put queues item without blocking, or fails when the queue is full.
func (q *batchQueue[T]) put(item T) error {
	select {
	case q.queue <- item:
		return nil
	default:
		q.dropped(1)
		return errQueueFull
	}
}

// run appends queued items until ctx is done, then what is still queued,
// for at most drain. Appends run under the client's timeouts, not under
// ctx: a cancelled ctx must not drop the items it was about to append.
func (q *batchQueue[T]) run(ctx context.Context, drain time.Duration) {
	appendCtx := context.WithoutCancel(ctx)
	for {
		select {
		case item := <-q.queue:
			q.flush(appendCtx, item)
		case <-ctx.Done():
			for deadline := time.Now().Add(drain); time.Now().Before(deadline); {
				select {
				case item := <-q.queue:
					q.flush(appendCtx, item)
				default:
					return
				}
			}
			return
		}
	}
}

// flush appends first and whatever else is queued, up to a batch, in one
// round trip. A failure is counted by appends.
func (q *batchQueue[T]) flush(ctx context.Context, first T) {
	items := []T{first}
	for len(items) < q.batch {
		select {
		case item := <-q.queue:
			items = append(items, item)
			continue
		default:
		}
		break
	}
	_ = q.appends(ctx, items)
}
