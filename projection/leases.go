package projection

import (
	"context"
	"fmt"
	"sync"
	"time"

	"messageapi"
)

// Leases leases the partitions of the stream: one owner at a time each.
type Leases interface {
	// Heartbeat records that this worker is alive and returns how many
	// workers are, itself included.
	Heartbeat(ctx context.Context, ttl time.Duration) (int, error)
	// Leave removes this worker from the live ones.
	Leave(ctx context.Context) error
	// Acquire, Renew and Release take, extend and give up this worker's
	// lease of a partition; Acquire and Renew report whether it holds it.
	Acquire(ctx context.Context, partition int, ttl time.Duration) (bool, error)
	Renew(ctx context.Context, partition int, ttl time.Duration) (bool, error)
	Release(ctx context.Context, partition int) error
}

// coordinate keeps this worker consuming its share of the partitions:
// with n workers alive, each owns up to ceil(P/n). Every third of the
// lease's time to live it renews its leases (stopping the partitions it
// lost), gives up those beyond its share (when workers join), and takes
// free ones up to its share (when workers leave or die). On stop it gives
// up everything at once, so peers need not wait for the leases to expire.
func (w *Worker) coordinate(ctx context.Context) error {
	owned := map[int]*running{}
	stop := func(i int) {
		owned[i].stop()
		delete(owned, i)
		w.metrics.owned.Set(float64(len(owned)))
	}
	defer func() {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for i := range owned {
			stop(i)
			_ = w.leases.Release(bg, i)
		}
		_ = w.leases.Leave(bg)
	}()
	// Start the scan at a place of this worker's own, so workers starting
	// together do not all reach for partition 0 first.
	first := int(messageapi.Hash32(w.cfg.Consumer) % uint32(len(w.partitions))) // spreads workers' starting points
	return w.every(ctx, w.cfg.LeaseTTL/3, func(ctx context.Context) error {
		if err := w.balance(ctx, owned, stop, first); err != nil {
			return fmt.Errorf("lease partitions: %w", err)
		}
		return nil
	})
}

// balance is one round of coordinate.
func (w *Worker) balance(ctx context.Context, owned map[int]*running, stop func(int), first int) error {
	alive, err := w.leases.Heartbeat(ctx, w.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	for i := range owned {
		held, err := w.leases.Renew(ctx, i, w.cfg.LeaseTTL)
		if err != nil {
			return err
		}
		if !held {
			w.log.Warn("lost the lease of a partition; a peer consumes it now", "partition", i)
			stop(i)
		}
	}
	share := (len(w.partitions) + max(alive, 1) - 1) / max(alive, 1)
	for i := range owned {
		if len(owned) <= share {
			break
		}
		stop(i)
		if err := w.leases.Release(ctx, i); err != nil {
			return err
		}
	}
	for k := range len(w.partitions) {
		if len(owned) >= share {
			break
		}
		i := (first + k) % len(w.partitions)
		if owned[i] != nil {
			continue
		}
		got, err := w.leases.Acquire(ctx, i, w.cfg.LeaseTTL)
		if err != nil {
			return err
		}
		if got {
			owned[i] = start(ctx, w.partition(i))
			w.metrics.owned.Set(float64(len(owned)))
		}
	}
	return nil
}

// running is a partition being consumed.
type running struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func start(ctx context.Context, p *partitionLoop) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		_ = p.run(ctx)
	}()
	return r
}

// stop ends the consumption, after the batch in flight.
func (r *running) stop() {
	r.cancel()
	r.done.Wait()
}
