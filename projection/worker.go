package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"

	"messageapi"
)

// Store folds reaction changes into the read model.
type Store interface {
	// Project folds the unprojected changes of these reactions, skipping
	// those another transaction holds.
	Project(ctx context.Context, reactionIDs []string) (messageapi.FoldResult, error)
	// Sweep folds changes old enough that are still unprojected.
	Sweep(ctx context.Context, p messageapi.SweepParams) (messageapi.FoldResult, error)
	// Lag is the age of the oldest unprojected change.
	Lag(ctx context.Context) (time.Duration, error)
}

// Stream delivers reaction changes to one named consumer of a consumer
// group.
type Stream interface {
	EnsureGroup(ctx context.Context) error
	Read(ctx context.Context, count int, block time.Duration) ([]messageapi.StreamEntry, error)
	ReadPending(ctx context.Context, count int) ([]messageapi.StreamEntry, error)
	Claim(ctx context.Context, minIdle time.Duration, count int) ([]messageapi.StreamEntry, error)
	Ack(ctx context.Context, ids []string) error
	DeadLetter(ctx context.Context, entries []messageapi.StreamEntry, reason string) error
	Backlog(ctx context.Context) (messageapi.StreamBacklog, error)
	RemoveIdleConsumers(ctx context.Context, idle time.Duration) (int, error)
}

// ViewCache receives views after their fold commits; it keeps only
// versions newer than those it holds.
type ViewCache interface {
	RefreshViews(ctx context.Context, views []messageapi.MessageView) (int, error)
}

// MaxBatchSize bounds Config.BatchSize: one fold transaction locks that
// many rows.
const MaxBatchSize = 10_000

// Config configures a Worker. A zero field takes its value from
// DefaultConfig.
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
	// RetryMax caps the backoff between retries of a failed read or fold.
	RetryMax time.Duration
	// FoldTimeout bounds one batch's fold with its retries; a batch still
	// failing then stays pending for a later claim. It must be below
	// ClaimMinIdle, so that no peer claims a batch still being retried.
	FoldTimeout time.Duration
}

// DefaultConfig returns the settings a zero Config field takes.
func DefaultConfig() Config {
	return Config{
		Group:         "projection",
		BatchSize:     500,
		Block:         time.Second,
		ClaimInterval: 5 * time.Second,
		ClaimMinIdle:  30 * time.Second,
		MaxDeliveries: 10,
		SweepInterval: time.Second,
		SweepMinAge:   5 * time.Second,
		SweepBatch:    1000,
		StatsInterval: 2 * time.Second,
		RetryMax:      5 * time.Second,
		FoldTimeout:   10 * time.Second,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.Group == "" {
		c.Group = d.Group
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = d.MaxDeliveries
	}
	if c.SweepBatch <= 0 {
		c.SweepBatch = d.SweepBatch
	}
	set(&c.Block, d.Block)
	set(&c.ClaimInterval, d.ClaimInterval)
	set(&c.ClaimMinIdle, d.ClaimMinIdle)
	set(&c.SweepInterval, d.SweepInterval)
	set(&c.SweepMinAge, d.SweepMinAge)
	set(&c.StatsInterval, d.StatsInterval)
	set(&c.RetryMax, d.RetryMax)
	set(&c.FoldTimeout, d.FoldTimeout)
}

// ConfigError is a Config that cannot work: Setting breaks Rule, which,
// when Other is set, relates it to that other setting.
type ConfigError struct {
	Setting, Rule, Other string
}

func (e *ConfigError) Error() string {
	return strings.TrimSpace("projection: " + e.Setting + " " + e.Rule + " " + e.Other)
}

// Validate reports a configuration that cannot work, with defaults
// applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Consumer == "":
		return &ConfigError{Setting: "Consumer", Rule: "must not be empty"}
	case c.BatchSize > MaxBatchSize:
		return &ConfigError{Setting: "BatchSize", Rule: fmt.Sprintf("must be at most %d", MaxBatchSize)}
	case c.ClaimMinIdle < c.Block:
		// Peers would claim entries a worker is still waiting on.
		return &ConfigError{Setting: "ClaimMinIdle", Rule: "must be at least", Other: "Block"}
	case c.FoldTimeout >= c.ClaimMinIdle:
		// A peer would claim a batch that is still being retried.
		return &ConfigError{Setting: "FoldTimeout", Rule: "must be below", Other: "ClaimMinIdle"}
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

	// retryMu guards retryLater: entries whose rows another transaction
	// held when their batch was folded. They stay pending, unacknowledged,
	// and join the next batch.
	retryMu    sync.Mutex
	retryLater []messageapi.StreamEntry
}

// retryWait is how soon a batch retries entries whose rows were held.
const retryWait = 100 * time.Millisecond

// NewWorker returns a Worker. metrics may be shared by the workers of one
// process; see NewMetrics.
func NewWorker(store Store, stream Stream, cache ViewCache, log *slog.Logger, metrics *Metrics, cfg Config) (*Worker, error) {
	if store == nil || stream == nil || cache == nil || log == nil || metrics == nil {
		return nil, errors.New("projection: NewWorker needs a store, a stream, a cache, a logger and metrics")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Worker{store: store, stream: stream, cache: cache, log: log.With("consumer", cfg.Consumer), metrics: metrics, cfg: cfg}, nil
}

// Run consumes, claims, sweeps and reports until ctx is done. A fold in
// flight when ctx ends is finished and acknowledged first (bounded by
// FoldTimeout), so a graceful stop leaves nothing half done.
func (w *Worker) Run(ctx context.Context) error {
	if _, err := retry(ctx, w, "create consumer group", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, w.stream.EnsureGroup(ctx)
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
// restart), then reads new ones. Reads are retried until they succeed or
// ctx ends.
func (w *Worker) consume(ctx context.Context) error {
	for {
		entries, err := retry(ctx, w, "read own pending entries", func(ctx context.Context) ([]messageapi.StreamEntry, error) {
			return w.stream.ReadPending(ctx, w.cfg.BatchSize)
		})
		if err != nil || len(entries) == 0 {
			break
		}
		w.metrics.redelivered.Add(float64(len(entries)))
		w.handle(ctx, entries)
	}
	for ctx.Err() == nil {
		w.retryMu.Lock()
		again := w.retryLater
		w.retryLater = nil
		w.retryMu.Unlock()
		block := w.cfg.Block
		if len(again) > 0 {
			block = min(block, retryWait)
		}
		entries, err := retry(ctx, w, "read stream", func(ctx context.Context) ([]messageapi.StreamEntry, error) {
			return w.stream.Read(ctx, max(w.cfg.BatchSize-len(again), 1), block)
		})
		if err == nil || len(again) > 0 {
			if batch := append(again, entries...); len(batch) > 0 {
				w.handle(ctx, batch)
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
	res, err := retry(fctx, w, "fold batch", func(ctx context.Context) (messageapi.FoldResult, error) {
		res, err := w.store.Project(ctx, ids)
		if err != nil {
			w.metrics.foldErrors.Inc()
		}
		return res, err
	})
	if err != nil {
		w.log.Warn("fold abandoned; entries stay pending for a retry", "entries", len(valid), "err", err)
		return
	}
	views := res.Views
	w.refresh(fctx, views)
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
		w.metrics.heldBack.Add(float64(len(later)))
		w.retryMu.Lock()
		w.retryLater = append(w.retryLater, later...)
		w.retryMu.Unlock()
		valid = slices.DeleteFunc(valid, func(e messageapi.StreamEntry) bool { return held[e.Event.ReactionID] })
	}
	if err := w.stream.Ack(fctx, acks); err != nil {
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
	if err := w.stream.DeadLetter(ctx, entries, reason); err != nil {
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
	entries, err := w.stream.Claim(ctx, w.cfg.ClaimMinIdle, w.cfg.BatchSize)
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
		res, err := w.store.Sweep(ctx, messageapi.SweepParams{MinAge: w.cfg.SweepMinAge, Limit: w.cfg.SweepBatch})
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		if res.Folded == 0 {
			return nil
		}
		w.metrics.swept.Add(float64(res.Folded))
		w.log.Info("swept changes the stream did not deliver", "changes", res.Folded)
		w.refresh(ctx, res.Views)
		if res.Folded < w.cfg.SweepBatch {
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
	backlog, err := w.stream.Backlog(ctx)
	if err != nil {
		return fmt.Errorf("stream backlog: %w", err)
	}
	w.metrics.pending.Set(float64(backlog.Pending))
	w.metrics.unread.Set(float64(backlog.Unread))
	if _, err := w.stream.RemoveIdleConsumers(ctx, 24*time.Hour); err != nil {
		return fmt.Errorf("remove idle consumers: %w", err)
	}
	return nil
}

// every runs fn every interval until ctx is done. A failure is not
// retried sooner: the next tick is the retry. Failures are logged like
// retry's, first and then rarely.
func (w *Worker) every(ctx context.Context, interval time.Duration, fn func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			failures++
			w.logFailure("periodic task", failures, err)
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

// retry calls fn until it succeeds or ctx ends, waiting between attempts
// with exponential backoff from 50ms up to RetryMax, with jitter so that
// workers recovering together do not retry in step.
func retry[T any](ctx context.Context, w *Worker, what string, fn func(context.Context) (T, error)) (T, error) {
	failures := 0
	return backoff.Retry(ctx, func() (T, error) { return fn(ctx) },
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: w.cfg.RetryMax,
		}),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			failures++
			w.logFailure(what, failures, err)
		}))
}

// logFailure logs the first failure of a run of failures and then every
// 30th, so an outage does not flood the log.
func (w *Worker) logFailure(what string, failures int, err error) {
	if failures == 1 || failures%30 == 0 {
		w.log.Warn(what+" failed; retrying", "failures", failures, "err", err)
	}
}
