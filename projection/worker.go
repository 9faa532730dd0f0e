package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"messageapi"
)

// Store folds reaction changes into the read model.
type Store interface {
	// Project folds the unprojected changes of these reactions and returns
	// the views it changed.
	Project(ctx context.Context, reactionIDs []string) ([]messageapi.MessageView, error)
	// Sweep folds up to limit changes at least minAge old that are still
	// unprojected, and returns how many it folded and the views it changed.
	Sweep(ctx context.Context, minAge time.Duration, limit int) (int, []messageapi.MessageView, error)
	// Lag is the age of the oldest unprojected change.
	Lag(ctx context.Context) (time.Duration, error)
}

// Stream delivers reaction changes through a consumer group.
type Stream interface {
	EnsureGroup(ctx context.Context, group string) error
	Read(ctx context.Context, group, consumer string, count int, block time.Duration) ([]messageapi.StreamEntry, error)
	ReadPending(ctx context.Context, group, consumer string, count int) ([]messageapi.StreamEntry, error)
	Claim(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]messageapi.StreamEntry, error)
	Ack(ctx context.Context, group string, ids []string) error
	DeadLetter(ctx context.Context, group string, entries []messageapi.StreamEntry, reason string) error
	Backlog(ctx context.Context, group string) (pending, lag int64, err error)
	RemoveIdleConsumers(ctx context.Context, group string, idle time.Duration) (int, error)
}

// ViewCache receives views after their fold commits; it keeps only
// versions newer than those it holds.
type ViewCache interface {
	RefreshViews(ctx context.Context, views []messageapi.MessageView) (int, error)
}

// Config configures a Worker.
type Config struct {
	// Group is the consumer group; Consumer is this worker's name in it,
	// unique per running worker.
	Group    string
	Consumer string
	// BatchSize is how many entries one read takes, and so the most
	// changes one fold transaction covers.
	BatchSize int
	// Block is how long a read waits for new entries.
	Block time.Duration
	// ClaimInterval is how often the worker claims entries that another
	// consumer has left pending for ClaimMinIdle.
	ClaimInterval time.Duration
	ClaimMinIdle  time.Duration
	// MaxDeliveries is how often an entry may be delivered before it is
	// moved to the dead-letter stream. Its change is not lost: the sweeper
	// still folds it.
	MaxDeliveries int64
	// SweepInterval is how often the sweeper looks for changes older than
	// SweepMinAge that no entry brought; SweepBatch caps one sweep.
	SweepInterval time.Duration
	SweepMinAge   time.Duration
	SweepBatch    int
	// StatsInterval is how often lag and backlog metrics are refreshed.
	StatsInterval time.Duration
	// RetryMax caps the backoff between retries of a failed fold.
	RetryMax time.Duration
	// FoldTimeout bounds one batch's fold with its retries; a batch still
	// failing then stays pending for a later claim. Keep it below
	// ClaimMinIdle, so a peer does not claim a batch still being retried.
	FoldTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Group == "" {
		c.Group = "projection"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 10
	}
	if c.SweepBatch <= 0 {
		c.SweepBatch = 1000
	}
	def(&c.Block, time.Second)
	def(&c.ClaimInterval, 5*time.Second)
	def(&c.ClaimMinIdle, 30*time.Second)
	def(&c.SweepInterval, time.Second)
	def(&c.SweepMinAge, 5*time.Second)
	def(&c.StatsInterval, 2*time.Second)
	def(&c.RetryMax, 5*time.Second)
	def(&c.FoldTimeout, 10*time.Second)
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Consumer == "":
		return errors.New("projection: a consumer name is required")
	case c.BatchSize > 10_000:
		return errors.New("projection: batch size must be at most 10000")
	case c.ClaimMinIdle < c.Block:
		return errors.New("projection: claim min idle must be at least the read block time")
	}
	return nil
}

// Worker is one consumer of the reaction stream.
type Worker struct {
	store   Store
	stream  Stream
	cache   ViewCache
	log     *slog.Logger
	metrics *Metrics
	cfg     Config
}

// NewWorker returns a Worker. metrics may be shared by the workers of one
// process; see NewMetrics.
func NewWorker(store Store, stream Stream, cache ViewCache, log *slog.Logger, metrics *Metrics, cfg Config) (*Worker, error) {
	if store == nil || stream == nil || cache == nil || log == nil || metrics == nil {
		return nil, errors.New("projection: NewWorker needs a store, a stream, a cache, a logger and metrics")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Worker{store: store, stream: stream, cache: cache, log: log.With("consumer", cfg.Consumer), metrics: metrics, cfg: cfg}, nil
}

// Run consumes, claims, sweeps and reports until ctx is done. A fold in
// flight when ctx ends is finished and acknowledged first (bounded by
// FoldTimeout), so a graceful stop leaves nothing half done.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.retry(ctx, "create consumer group", func(ctx context.Context) error {
		return w.stream.EnsureGroup(ctx, w.cfg.Group)
	}); err != nil {
		return nil // stopped before the group existed
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.consume(ctx) })
	g.Go(func() error { return w.every(ctx, w.cfg.ClaimInterval, w.claim) })
	g.Go(func() error { return w.every(ctx, w.cfg.SweepInterval, w.sweep) })
	g.Go(func() error { return w.every(ctx, w.cfg.StatsInterval, w.stats) })
	return g.Wait()
}

// consume first finishes entries this consumer name already held (a
// restart), then reads new ones.
func (w *Worker) consume(ctx context.Context) error {
	for ctx.Err() == nil {
		entries, err := w.stream.ReadPending(ctx, w.cfg.Group, w.cfg.Consumer, w.cfg.BatchSize)
		if err != nil {
			w.backoff(ctx, "read own pending entries", err)
			continue
		}
		if len(entries) == 0 {
			break
		}
		w.metrics.redelivered.Add(float64(len(entries)))
		w.handle(ctx, entries)
	}
	failures := 0
	for ctx.Err() == nil {
		entries, err := w.stream.Read(ctx, w.cfg.Group, w.cfg.Consumer, w.cfg.BatchSize, w.cfg.Block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			w.sleep(ctx, backoffFor(failures, w.cfg.RetryMax))
			if failures == 1 || failures%30 == 0 {
				w.log.Warn("read stream failed; retrying", "failures", failures, "err", err)
			}
			continue
		}
		failures = 0
		if len(entries) > 0 {
			w.handle(ctx, entries)
		}
	}
	return nil
}

// handle folds a batch and acknowledges it after the fold commits. It
// retries the fold until it succeeds: the entries are pending either way,
// and a worker that gives up would only leave them to a claim later.
func (w *Worker) handle(ctx context.Context, entries []messageapi.StreamEntry) {
	start := time.Now()
	var valid, invalid []messageapi.StreamEntry
	for _, e := range entries {
		if e.Invalid != "" {
			invalid = append(invalid, e)
		} else {
			valid = append(valid, e)
		}
	}
	w.deadLetter(ctx, invalid, "invalid entry")
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
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.FoldTimeout)
	defer cancel()
	var views []messageapi.MessageView
	err := w.retry(fctx, "fold batch", func(ctx context.Context) error {
		var err error
		if views, err = w.store.Project(ctx, ids); err != nil {
			w.metrics.foldErrors.Inc()
		}
		return err
	})
	if err != nil {
		w.log.Warn("fold abandoned; entries stay pending for a retry", "entries", len(valid), "err", err)
		return
	}
	w.refresh(fctx, views)
	if err := w.stream.Ack(fctx, w.cfg.Group, acks); err != nil {
		// The fold committed; a redelivery will find nothing to do.
		w.log.Warn("ack failed; entries will be redelivered", "entries", len(acks), "err", err)
	}
	now := time.Now()
	for _, e := range valid {
		w.metrics.eventLatency.Observe(now.Sub(e.Event.ChangedAt).Seconds())
	}
	w.metrics.events.Add(float64(len(valid)))
	w.metrics.batchSize.Observe(float64(len(valid)))
	w.metrics.foldDuration.Observe(time.Since(start).Seconds())
	w.metrics.viewsWritten.Add(float64(len(views)))
}

// refresh pushes committed views to the cache. A failure leaves older
// versions there until the next change or the cache TTL; it never blocks
// the projection.
func (w *Worker) refresh(ctx context.Context, views []messageapi.MessageView) {
	if len(views) == 0 {
		return
	}
	if _, err := w.cache.RefreshViews(ctx, views); err != nil {
		w.metrics.cacheErrors.Inc()
		w.log.Debug("cache refresh failed", "views", len(views), "err", err)
	}
}

func (w *Worker) deadLetter(ctx context.Context, entries []messageapi.StreamEntry, reason string) {
	if len(entries) == 0 {
		return
	}
	if err := w.stream.DeadLetter(ctx, w.cfg.Group, entries, reason); err != nil {
		w.log.Warn("dead-letter failed; entries stay pending", "entries", len(entries), "err", err)
		return
	}
	w.metrics.deadLettered.Add(float64(len(entries)))
	for _, e := range entries {
		w.log.Error("entry dead-lettered", "entry_id", e.ID, "reason", reason, "invalid", e.Invalid,
			"reaction_id", e.Event.ReactionID, "deliveries", e.Deliveries)
	}
}

// claim takes over entries that a dead or stuck consumer left pending.
// Entries delivered too often go to the dead-letter stream instead; their
// changes are still folded by the sweeper.
func (w *Worker) claim(ctx context.Context) error {
	entries, err := w.stream.Claim(ctx, w.cfg.Group, w.cfg.Consumer, w.cfg.ClaimMinIdle, w.cfg.BatchSize)
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	w.metrics.redelivered.Add(float64(len(entries)))
	var keep, poison []messageapi.StreamEntry
	for _, e := range entries {
		if e.Deliveries > w.cfg.MaxDeliveries {
			poison = append(poison, e)
		} else {
			keep = append(keep, e)
		}
	}
	w.deadLetter(ctx, poison, fmt.Sprintf("delivered more than %d times", w.cfg.MaxDeliveries))
	if len(keep) > 0 {
		w.log.Info("claimed entries another consumer left pending", "entries", len(keep))
		w.handle(ctx, keep)
	}
	return nil
}

// sweep folds changes that no stream entry brought, until none is left.
func (w *Worker) sweep(ctx context.Context) error {
	for ctx.Err() == nil {
		n, views, err := w.store.Sweep(ctx, w.cfg.SweepMinAge, w.cfg.SweepBatch)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		if n == 0 {
			return nil
		}
		w.metrics.swept.Add(float64(n))
		w.log.Info("swept changes the stream did not deliver", "changes", n)
		w.refresh(ctx, views)
		if n < w.cfg.SweepBatch {
			return nil
		}
	}
	return nil
}

// stats refreshes the lag and backlog gauges, and removes consumers that
// have been idle and empty for a day.
func (w *Worker) stats(ctx context.Context) error {
	lag, err := w.store.Lag(ctx)
	if err != nil {
		return fmt.Errorf("projection lag: %w", err)
	}
	w.metrics.lag.Set(lag.Seconds())
	pending, streamLag, err := w.stream.Backlog(ctx, w.cfg.Group)
	if err != nil {
		return fmt.Errorf("stream backlog: %w", err)
	}
	w.metrics.pending.Set(float64(pending))
	w.metrics.unread.Set(float64(streamLag))
	if _, err := w.stream.RemoveIdleConsumers(ctx, w.cfg.Group, 24*time.Hour); err != nil {
		return fmt.Errorf("remove idle consumers: %w", err)
	}
	return nil
}

// every runs fn every interval until ctx is done. A failing fn is logged
// on its first failure and then rarely, so an outage does not flood the
// log; the next tick retries.
func (w *Worker) every(ctx context.Context, interval time.Duration, fn func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			failures++
			if failures == 1 || failures%60 == 0 {
				w.log.Warn("periodic task failed; retrying", "failures", failures, "err", err)
			}
		} else if err == nil {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// retry calls fn until it succeeds or ctx ends, with capped exponential
// backoff, logging the first failure and then rarely.
func (w *Worker) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	for failures := 0; ; failures++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if failures == 0 || failures%30 == 0 {
			w.log.Warn(what+" failed; retrying", "failures", failures+1, "err", err)
		}
		w.sleep(ctx, backoffFor(failures+1, w.cfg.RetryMax))
	}
}

func (w *Worker) backoff(ctx context.Context, what string, err error) {
	w.log.Warn(what+" failed; retrying", "err", err)
	w.sleep(ctx, w.cfg.RetryMax)
}

func (w *Worker) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// backoffFor is 50ms doubled per failure, capped at limit.
func backoffFor(failures int, limit time.Duration) time.Duration {
	d := 50 * time.Millisecond
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
