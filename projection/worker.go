package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"

	"messageapi"
	"messageapi/internal/retry"
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

// Stream delivers the reaction changes of one partition of the stream to
// one named consumer of the partition's consumer group.
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

// Feed takes the events of folded changes for the live feed.
type Feed interface {
	Append(ctx context.Context, events []messageapi.Event) error
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
	// LeaseTTL is how long a lease on a partition lasts unless renewed
	// (every third of it), when the worker leases partitions: a worker
	// that dies or freezes loses its partitions to its peers after it.
	LeaseTTL time.Duration
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
		LeaseTTL:      5 * time.Second,
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
	set(&c.LeaseTTL, d.LeaseTTL)
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

// Worker is one worker of the projection: it consumes the partitions of
// the reaction stream (all of them, or, with leases, those it holds),
// claims entries peers left pending, sweeps changes the stream lost, and
// reports the backlog.
type Worker struct {
	store      Store
	partitions []Stream
	leases     Leases
	cache      ViewCache
	feed       Feed
	log        *slog.Logger
	metrics    *Metrics
	cfg        Config
}

// Deps are what a Worker works on.
type Deps struct {
	Store Store
	// Partitions are the consumers of the stream's partitions, one each,
	// in partition order.
	Partitions []Stream
	// Leases, when set, gives each partition one owning worker at a time;
	// without it the worker consumes every partition, in competition with
	// its peers.
	Leases Leases
	Cache  ViewCache
	// Feed, when set, receives the events of every fold after it commits.
	Feed    Feed
	Log     *slog.Logger
	Metrics *Metrics
}

// NewWorker returns a Worker. The metrics may be shared by the workers of
// one process; see NewMetrics.
func NewWorker(d Deps, cfg Config) (*Worker, error) {
	if d.Store == nil || len(d.Partitions) == 0 || slices.Contains(d.Partitions, nil) || d.Cache == nil || d.Log == nil || d.Metrics == nil {
		return nil, errors.New("projection: NewWorker needs a store, a stream consumer per partition, a cache, a logger and metrics")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Worker{store: d.Store, partitions: d.Partitions, leases: d.Leases, cache: d.Cache, feed: d.Feed,
		log: d.Log.With("consumer", cfg.Consumer), metrics: d.Metrics, cfg: cfg}, nil
}

// Run consumes, claims, sweeps and reports until ctx is done. A fold in
// flight when ctx ends is finished and acknowledged first (bounded by
// FoldTimeout), so a graceful stop leaves nothing half done.
func (w *Worker) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.every(ctx, w.cfg.SweepInterval, w.sweep) })
	g.Go(func() error { return w.every(ctx, w.cfg.StatsInterval, w.stats) })
	if w.leases != nil {
		g.Go(func() error { return w.coordinate(ctx) })
	} else {
		for i := range w.partitions {
			g.Go(func() error { return w.partition(i).run(ctx) })
		}
	}
	return g.Wait()
}

func (w *Worker) partition(i int) *partitionLoop {
	return &partitionLoop{w: w, index: i, stream: w.partitions[i], log: w.log.With("partition", i)}
}

// refresh pushes a committed fold's views to the cache and its events to
// the live feed. A failed refresh leaves older versions cached until the
// next change or the cache TTL; failed events are lost to live clients,
// who still read the counts from the next event or a fetch. Neither
// blocks the projection.
func (w *Worker) refresh(ctx context.Context, res messageapi.FoldResult) {
	if len(res.Views) == 0 {
		return
	}
	if _, err := w.cache.RefreshViews(ctx, res.Views); err != nil {
		w.metrics.cacheErrors.Inc()
		w.log.Debug("cache refresh failed", "views", len(res.Views), "err", err)
	}
	if w.feed == nil || len(res.Changes) == 0 {
		return
	}
	if err := w.feed.Append(ctx, messageapi.FoldEvents(res.Changes, res.Views)); err != nil {
		w.log.Debug("live feed append failed", "events", len(res.Changes), "err", err)
	}
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
		w.refresh(ctx, res)
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
	for i, stream := range w.partitions {
		backlog, err := stream.Backlog(ctx)
		if err != nil {
			return fmt.Errorf("stream backlog of partition %d: %w", i, err)
		}
		p := strconv.Itoa(i)
		w.metrics.backlog(p, backlog)
		if _, err := stream.RemoveIdleConsumers(ctx, 24*time.Hour); err != nil {
			return fmt.Errorf("remove idle consumers of partition %d: %w", i, err)
		}
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

// withRetry calls fn until it succeeds or ctx ends, waiting between attempts
// with exponential backoff from 50ms up to RetryMax, with jitter so that
// workers recovering together do not retry in step.
func withRetry[T any](ctx context.Context, w *Worker, what string, fn func(context.Context) (T, error)) (T, error) {
	failures := 0
	return backoff.Retry(ctx, func() (T, error) { return fn(ctx) },
		backoff.WithBackOff(retry.Policy(50*time.Millisecond, w.cfg.RetryMax)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			failures++
			w.logFailure(what, failures, err)
		}))
}

// logFailure logs a run of failures as retry.Logged says.
func (w *Worker) logFailure(what string, failures int, err error) {
	if retry.Logged(failures) {
		w.log.Warn(what+" failed; retrying", "failures", failures, "err", err)
	}
}
