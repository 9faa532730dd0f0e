package projection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"messageapi"
)

// partitionLoop consumes one partition of the stream: it reads batches,
// folds and acknowledges them, and claims what dead peers left pending.
type partitionLoop struct {
	w      *Worker
	index  int
	stream Stream
	log    *slog.Logger

	// retryMu guards retryLater: entries whose rows another transaction
	// held when their batch was folded. They stay pending, unacknowledged,
	// and join the next batch.
	retryMu    sync.Mutex
	retryLater []messageapi.StreamEntry
}

// retryWait is how soon a batch retries entries whose rows were held.
const retryWait = 100 * time.Millisecond

// run consumes and claims until ctx is done.
func (p *partitionLoop) run(ctx context.Context) error {
	if _, err := withRetry(ctx, p.w, "create consumer group", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, p.stream.EnsureGroup(ctx)
	}); err != nil {
		return nil // stopped before the group existed
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.consume(ctx) })
	g.Go(func() error { return p.w.every(ctx, p.w.cfg.ClaimInterval, p.claim) })
	return g.Wait()
}

// consume first finishes entries this consumer name already held (a
// restart), then reads new ones. Reads are retried until they succeed or
// ctx ends.
func (p *partitionLoop) consume(ctx context.Context) error {
	for {
		entries, err := withRetry(ctx, p.w, "read own pending entries", func(ctx context.Context) ([]messageapi.StreamEntry, error) {
			return p.stream.ReadPending(ctx, p.w.cfg.BatchSize)
		})
		if err != nil || len(entries) == 0 {
			break
		}
		p.w.metrics.redelivered.Add(float64(len(entries)))
		p.handle(ctx, entries)
	}
	for ctx.Err() == nil {
		p.retryMu.Lock()
		again := p.retryLater
		p.retryLater = nil
		p.retryMu.Unlock()
		block := p.w.cfg.Block
		if len(again) > 0 {
			block = min(block, retryWait)
		}
		entries, err := withRetry(ctx, p.w, "read stream", func(ctx context.Context) ([]messageapi.StreamEntry, error) {
			return p.stream.Read(ctx, max(p.w.cfg.BatchSize-len(again), 1), block)
		})
		if err == nil || len(again) > 0 {
			if batch := append(again, entries...); len(batch) > 0 {
				p.handle(ctx, batch)
			}
		}
	}
	return nil
}

// handle folds a batch and acknowledges it after the fold commits. It
// retries the fold until it succeeds or FoldTimeout passes: the entries
// are pending either way, and a worker that gives up only leaves them to
// a claim later. Entries whose rows another transaction held are not
// acknowledged; they join the next batch.
func (p *partitionLoop) handle(ctx context.Context, entries []messageapi.StreamEntry) {
	start := time.Now()
	var valid, invalid []messageapi.StreamEntry
	for _, e := range entries {
		if e.Invalid != "" {
			invalid = append(invalid, e)
		} else {
			valid = append(valid, e)
		}
	}
	p.deadLetter(ctx, invalid, "invalid entry")
	if len(valid) == 0 {
		return
	}
	ids := make([]string, len(valid))
	acks := make([]string, len(valid))
	for i, e := range valid {
		ids[i], acks[i] = e.Event.ReactionID, e.ID
	}
	// Finish the batch even when shutdown starts meanwhile: a commit
	// without an ack costs a redelivery, nothing more, but finishing keeps
	// restarts quiet.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.w.cfg.FoldTimeout)
	defer cancel()
	res, err := withRetry(fctx, p.w, "fold batch", func(ctx context.Context) (messageapi.FoldResult, error) {
		res, err := p.w.store.Project(ctx, ids)
		if err != nil {
			p.w.metrics.foldErrors.Inc()
		}
		return res, err
	})
	if err != nil {
		p.log.Warn("fold abandoned; entries stay pending for a retry", "entries", len(valid), "err", err)
		return
	}
	// The fold has committed: what follows gets time of its own, however
	// much of FoldTimeout the fold's retries took.
	cancel()
	fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), postCommitTimeout)
	defer cancel()
	p.w.refresh(fctx, res)
	if len(res.Skipped) > 0 {
		held := make(map[string]bool, len(res.Skipped))
		for _, id := range res.Skipped {
			held[id] = true
		}
		acks = acks[:0]
		var later []messageapi.StreamEntry
		for _, e := range valid {
			if held[e.Event.ReactionID] {
				later = append(later, e)
			} else {
				acks = append(acks, e.ID)
			}
		}
		p.w.metrics.heldBack.Add(float64(len(later)))
		p.retryMu.Lock()
		p.retryLater = append(p.retryLater, later...)
		p.retryMu.Unlock()
		valid = slices.DeleteFunc(valid, func(e messageapi.StreamEntry) bool { return held[e.Event.ReactionID] })
	}
	if err := p.stream.Ack(fctx, acks); err != nil {
		// The fold committed; a redelivery will find nothing to do.
		p.log.Warn("ack failed; entries will be redelivered", "entries", len(acks), "err", err)
	}
	now := time.Now()
	for _, e := range valid {
		p.w.metrics.eventLatency.Observe(now.Sub(e.Event.ChangedAt).Seconds())
	}
	p.w.metrics.events.Add(float64(len(valid)))
	p.w.metrics.batchSize.Observe(float64(len(valid)))
	p.w.metrics.foldDuration.Observe(time.Since(start).Seconds())
	p.w.metrics.viewsWritten.Add(float64(len(res.Views)))
}

// postCommitTimeout bounds what follows a fold's commit: the cache
// refresh, the live-feed append and the ack, each a Redis call or two.
const postCommitTimeout = 5 * time.Second

func (p *partitionLoop) deadLetter(ctx context.Context, entries []messageapi.StreamEntry, reason string) {
	if len(entries) == 0 {
		return
	}
	if err := p.stream.DeadLetter(ctx, entries, reason); err != nil {
		p.log.Warn("dead-letter failed; entries stay pending", "entries", len(entries), "err", err)
		return
	}
	p.w.metrics.deadLettered.Add(float64(len(entries)))
	for _, e := range entries {
		p.log.Error("entry dead-lettered", "entry_id", e.ID, "reason", reason, "invalid", e.Invalid,
			"reaction_id", e.Event.ReactionID, "deliveries", e.Deliveries)
	}
}

// claim takes over entries that a dead or stuck consumer left pending.
// Entries delivered too often go to the dead-letter stream instead; their
// changes are still folded by the sweeper.
func (p *partitionLoop) claim(ctx context.Context) error {
	entries, err := p.stream.Claim(ctx, p.w.cfg.ClaimMinIdle, p.w.cfg.BatchSize)
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	p.w.metrics.redelivered.Add(float64(len(entries)))
	var keep, poison []messageapi.StreamEntry
	for _, e := range entries {
		if e.Deliveries > p.w.cfg.MaxDeliveries {
			poison = append(poison, e)
		} else {
			keep = append(keep, e)
		}
	}
	p.deadLetter(ctx, poison, fmt.Sprintf("delivered more than %d times", p.w.cfg.MaxDeliveries))
	if len(keep) > 0 {
		p.log.Info("claimed entries another consumer left pending", "entries", len(keep))
		p.handle(ctx, keep)
	}
	return nil
}
