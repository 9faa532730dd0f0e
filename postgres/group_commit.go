package postgres

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"messageapi"
)

// Defaults of GroupCommitConfig.
const (
	DefaultMaxBatch   = 256
	DefaultCommitters = 2
)

// GroupCommitConfig configures a GroupCommitStore.
type GroupCommitConfig struct {
	// MaxBatch caps the writes one transaction carries.
	MaxBatch int
	// Committers is how many transactions run at once, each with the
	// writes that queued while the others ran. At most the pool's size.
	Committers int
}

// GroupCommitStore is a ReactionStore whose writes share transactions: a
// write waits in a queue, and a committer takes everything waiting (up to
// MaxBatch) and writes it in one transaction: the writes go in one
// pipelined round trip, and there is one commit. There is no
// timer: a lone write commits at once, and under load batches grow by
// themselves while the previous ones commit. Each write gets its own
// result, exactly as ReactionStore would give it: 201 or 200 decided under
// the row lock, an unknown message or a type over the cap reported to its
// writer alone, and the writes of one key applied in the order they came.
//
// Run must be running for writes to be served.
type GroupCommitStore struct {
	*ReactionStore
	queue   chan *groupWrite
	cfg     GroupCommitConfig
	metrics *GroupCommitMetrics
	log     *slog.Logger
}

// groupWrite is one queued write: a put or a delete, and where its result
// goes.
type groupWrite struct {
	ctx    context.Context
	put    *messageapi.PutReactionParams
	del    *messageapi.DeleteReactionParams
	queued time.Time
	done   chan groupResult // buffered: a committer never waits for a writer
}

type groupResult struct {
	put messageapi.PutReactionResult
	del messageapi.DeleteReactionResult
	err error
}

// key orders writes in a transaction, so that two transactions take the
// row locks of the keys they share in the same order.
func (w *groupWrite) key() (message, user, typ string) {
	if w.put != nil {
		return w.put.MessageID, w.put.UserID, w.put.Type
	}
	return w.del.MessageID, w.del.UserID, w.del.Type
}

// NewGroupCommitStore returns a GroupCommitStore on db.
func NewGroupCommitStore(db *DB, cfg GroupCommitConfig, m *GroupCommitMetrics, log *slog.Logger) *GroupCommitStore {
	cfg.MaxBatch = cmp.Or(max(cfg.MaxBatch, 0), DefaultMaxBatch)
	cfg.Committers = cmp.Or(max(cfg.Committers, 0), DefaultCommitters)
	return &GroupCommitStore{
		ReactionStore: NewReactionStore(db), queue: make(chan *groupWrite, 4*cfg.MaxBatch*cfg.Committers),
		cfg: cfg, metrics: m, log: log,
	}
}

// PutReaction queues the put and waits for its transaction.
func (s *GroupCommitStore) PutReaction(ctx context.Context, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error) {
	r := s.submit(ctx, &groupWrite{put: &p})
	return r.put, r.err
}

// DeleteReaction queues the delete and waits for its transaction.
func (s *GroupCommitStore) DeleteReaction(ctx context.Context, p messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error) {
	r := s.submit(ctx, &groupWrite{del: &p})
	return r.del, r.err
}

// submit queues w and waits for its result. A writer that gives up before
// its batch starts is dropped from it; one that gives up after gets an
// error although its write may commit, as with any write whose answer is
// lost (the committer logs it).
func (s *GroupCommitStore) submit(ctx context.Context, w *groupWrite) groupResult {
	w.ctx, w.queued, w.done = ctx, time.Now(), make(chan groupResult, 1)
	select {
	case s.queue <- w:
	case <-ctx.Done():
		return groupResult{err: ctx.Err()}
	}
	select {
	case r := <-w.done:
		return r
	case <-ctx.Done():
		return groupResult{err: ctx.Err()}
	}
}

// Run runs the committers until ctx is done, then commits what is still
// queued. Stop it only once no writer submits any more.
func (s *GroupCommitStore) Run(ctx context.Context) {
	done := make(chan struct{})
	for range s.cfg.Committers {
		go func() {
			defer func() { done <- struct{}{} }()
			s.commit(ctx)
		}()
	}
	for range s.cfg.Committers {
		<-done
	}
}

// commit is one committer: it waits for a write, takes what else is
// queued, and writes the batch.
func (s *GroupCommitStore) commit(ctx context.Context) {
	batch := make([]*groupWrite, 0, s.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case w := <-s.queue:
			batch = append(batch, w)
		case <-ctx.Done():
			// Drain: writers may still be waiting for their answer.
			for {
				select {
				case w := <-s.queue:
					s.write(context.WithoutCancel(ctx), []*groupWrite{w})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case w := <-s.queue:
				batch = append(batch, w)
			default:
				break fill
			}
		}
		s.write(context.WithoutCancel(ctx), batch)
	}
}

// write commits one batch and answers each writer.
func (s *GroupCommitStore) write(ctx context.Context, batch []*groupWrite) {
	start := time.Now()
	live := batch[:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.done <- groupResult{err: err} // gone before the batch started: not written
			continue
		}
		s.metrics.queued.Observe(start.Sub(w.queued).Seconds())
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	s.metrics.busy.Inc()
	defer s.metrics.busy.Dec()
	s.metrics.size.Observe(float64(len(live)))
	// Key order, stable so that writes of one key keep their order.
	slices.SortStableFunc(live, func(a, b *groupWrite) int {
		am, au, at := a.key()
		bm, bu, bt := b.key()
		return cmp.Or(cmp.Compare(am, bm), cmp.Compare(au, bu), cmp.Compare(at, bt))
	})
	results, err := s.writeBatch(ctx, live)
	if err != nil && len(live) > 1 && messageapi.ErrorCode(err) != messageapi.EUNAVAILABLE {
		// Something in the batch failed the transaction (not an outage):
		// write each alone, so that only the write at fault fails.
		s.metrics.batches.WithLabelValues("split").Inc()
		for _, w := range live {
			r, err := s.writeBatch(ctx, []*groupWrite{w})
			if err != nil {
				s.answer(w, groupResult{err: err})
			} else {
				s.answer(w, r[0])
			}
		}
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.batches.WithLabelValues(result).Inc()
	for i, w := range live {
		r := groupResult{err: err}
		if err == nil {
			r = results[i]
		}
		s.answer(w, r)
	}
}

// answer gives w its result, and logs a write that committed after its
// writer left.
func (s *GroupCommitStore) answer(w *groupWrite, r groupResult) {
	if w.ctx.Err() != nil && r.err == nil {
		m, u, t := w.key()
		s.log.Debug("reaction write committed after its client left", "message_id", m, "user_id", u, "type", t)
	}
	w.done <- r
}

// writeBatch writes the batch in one transaction, retrying it when
// PostgreSQL picks it as a deadlock victim, and returns each write's
// result. The error is the transaction's, when it failed as a whole.
func (s *GroupCommitStore) writeBatch(ctx context.Context, batch []*groupWrite) ([]groupResult, error) {
	for attempt := 1; ; attempt++ {
		results, err := s.tryBatch(ctx, batch)
		var pgErr *pgconn.PgError
		if attempt < 3 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			s.metrics.batches.WithLabelValues("retried").Inc()
			continue
		}
		if err != nil {
			return nil, translate(err, "write reactions")
		}
		return results, nil
	}
}

func (s *GroupCommitStore) tryBatch(ctx context.Context, batch []*groupWrite) ([]groupResult, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	results := make([]groupResult, len(batch))
	// One round trip: the begin, every write and the commit go in one
	// pipeline. A statement that fails makes the server skip the rest,
	// the commit too, and leaves the transaction for the deferred
	// rollback; a commit that finds the transaction failed says ROLLBACK.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	for i, w := range batch {
		if w.put != nil {
			p := w.put
			b.Queue(putReactionSQL, p.ID, p.MessageID, p.UserID, p.Type, p.Score, p.At, p.MaxTypes, p.Unique).
				QueryRow(func(row pgx.Row) error {
					results[i].put, results[i].err = scanPut(row, *p)
					return failsBatch(results[i].err)
				})
			continue
		}
		p := w.del
		b.Queue(deleteReactionSQL, p.MessageID, p.UserID, p.Type, p.At).QueryRow(func(row pgx.Row) error {
			results[i].del, results[i].err = scanDelete(row)
			return failsBatch(results[i].err)
		})
	}
	b.Queue("commit").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return errors.New("the batch's transaction was rolled back")
		}
		return nil
	})
	br := s.db.pool.SendBatch(ctx, b)
	defer br.Tx().Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after the commit; it returns the connection
	if err := br.Close(); err != nil {
		return nil, err
	}
	return results, nil
}

// failsBatch returns err when it is not an answer for one write (an
// unknown message or reaction, a type over the cap) but a failure that
// the whole batch must share.
func failsBatch(err error) error {
	switch messageapi.ErrorCode(err) {
	case "", messageapi.ENOTFOUND, messageapi.ELIMIT:
		return nil
	}
	return err
}

// GroupCommitMetrics are the metrics of a GroupCommitStore.
type GroupCommitMetrics struct {
	size    prometheus.Histogram
	queued  prometheus.Histogram
	busy    prometheus.Gauge
	batches *prometheus.CounterVec
}

// NewGroupCommitMetrics registers the metrics on reg.
func NewGroupCommitMetrics(reg prometheus.Registerer) *GroupCommitMetrics {
	m := &GroupCommitMetrics{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_write_batch_size",
			Help:    "Reaction writes per transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		queued: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messageapi_write_queue_seconds",
			Help:    "Time a reaction write waited for its transaction to start.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messageapi_write_committers_busy",
			Help: "Committers writing a batch; at the committer count the writes queue.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messageapi_write_batches_total",
			Help: "Reaction write transactions: ok, error (the batch failed, PostgreSQL unavailable), split (a write failed the batch; each was retried alone), retried (deadlock victim).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.size, m.queued, m.busy, m.batches)
	return m
}

// Compile-time check: the batching store is a drop-in for the plain one.
var _ interface {
	PutReaction(context.Context, messageapi.PutReactionParams) (messageapi.PutReactionResult, error)
	DeleteReaction(context.Context, messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error)
} = (*GroupCommitStore)(nil)
