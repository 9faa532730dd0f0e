package projection

import (
	"context"
	"log/slog"

	"messageapi"
)

// Reconciler checks and rebuilds views page by page.
type Reconciler interface {
	// ReconcilePage checks the views of up to limit messages after afterID
	// and rebuilds those that differ from their reactions. It returns how
	// many it checked, the last id checked, the rebuilt views and the ids
	// among them that had drifted rather than merely waited for a fold.
	ReconcilePage(ctx context.Context, afterID string, limit int) (checked int, last string, rebuilt []messageapi.MessageView, drifted []string, err error)
}

// ReconcileReport sums up a Reconcile run.
type ReconcileReport struct {
	// Checked is the number of views compared with their reactions.
	Checked int `json:"checked"`
	// Rebuilt is the number of views that differed and were rebuilt:
	// drifted ones, and ones whose latest changes were still to be folded.
	Rebuilt int `json:"rebuilt"`
	// Drifted lists the messages whose view disagreed with the changes
	// recorded as folded: a fault, now repaired.
	Drifted []string `json:"drifted"`
}

// Reconcile compares every view with the aggregate over its message's
// reactions and rebuilds each that differs, then refreshes the cache with
// the rebuilt views. It runs beside live workers: rebuilds take the same
// locks as folds.
func Reconcile(ctx context.Context, store Reconciler, cache ViewCache, log *slog.Logger, pageSize int) (ReconcileReport, error) {
	report := ReconcileReport{Drifted: []string{}}
	after := ""
	for {
		checked, last, rebuilt, drifted, err := store.ReconcilePage(ctx, after, pageSize)
		if err != nil {
			return report, err
		}
		if checked == 0 {
			return report, nil
		}
		report.Checked += checked
		report.Rebuilt += len(rebuilt)
		report.Drifted = append(report.Drifted, drifted...)
		for _, id := range drifted {
			log.Warn("view had drifted from its reactions; rebuilt", "message_id", id)
		}
		if len(rebuilt) > 0 {
			if _, err := cache.RefreshViews(ctx, rebuilt); err != nil {
				log.Warn("cache refresh after rebuild failed; cached views expire with the cache TTL", "err", err)
			}
		}
		after = last
	}
}
