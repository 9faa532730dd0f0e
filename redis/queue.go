package redis

import (
	"cmp"
	"context"
	"errors"
	"time"
)

// QueueConfig configures a Queue: the stream's publisher, the live feed's
// and the announcements of readers' own reactions each have one.
type QueueConfig struct {
	// Queue is how many items may wait for Redis; when it is full, new
	// items are dropped. Default 10,000.
	Queue int
	// Batch is the most items appended in one round trip. Default 256.
	Batch int
}

// errQueueFull reports an item dropped because Redis fell behind.
var errQueueFull = errors.New("append queue is full")

// Queue holds items for Redis and appends them in the background, in
// batches of what is waiting, so that the code that hands an item over
// never waits for Redis.
type Queue[T any] struct {
	queue   chan T
	batch   int
	appends func(context.Context, []T) error
	dropped func(int)
}

// NewQueue returns a Queue that sends its batches to appends, which counts
// its own failures, and tells dropped how many items a full queue refused.
// Run must be running for items to leave the queue.
func NewQueue[T any](cfg QueueConfig, appends func(context.Context, []T) error, dropped func(int)) *Queue[T] {
	return &Queue[T]{
		queue: make(chan T, cmp.Or(max(cfg.Queue, 0), 10_000)), batch: cmp.Or(max(cfg.Batch, 0), 256),
		appends: appends, dropped: dropped,
	}
}

// Put queues item without blocking, or fails when the queue is full. The
// error is not translated: callers pass it to Translate with their
// operation's name.
func (q *Queue[T]) Put(item T) error {
	select {
	case q.queue <- item:
		return nil
	default:
		q.dropped(1)
		return errQueueFull
	}
}

// Run appends queued items until ctx is done, then what is still queued,
// for at most drain. Appends run under the client's timeouts, not under
// ctx: a cancelled ctx must not drop the items it was about to append.
func (q *Queue[T]) Run(ctx context.Context, drain time.Duration) {
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
func (q *Queue[T]) flush(ctx context.Context, first T) {
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
