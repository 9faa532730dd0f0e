package projection

import (
	"context"
	"log/slog"

	"messageapi"
)

// Reconciler checks and rebuilds views page by page.
type Reconciler interface {
	// ReconcilePage checks a page of views and rebuilds those that differ
	// from their reactions; see messageapi.ReconcileResult.
	ReconcilePage(ctx context.Context, p messageapi.ReconcileParams) (messageapi.ReconcileResult, error)
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
		page, err := store.ReconcilePage(ctx, messageapi.ReconcileParams{AfterID: after, Limit: pageSize})
		if err != nil {
			return report, err
		}
		if page.Checked == 0 {
			return report, nil
		}
		report.Checked += page.Checked
		report.Rebuilt += len(page.Rebuilt)
		report.Drifted = append(report.Drifted, page.Drifted...)
		for _, id := range page.Drifted {
			log.Warn("view had drifted from its reactions; rebuilt", "message_id", id)
		}
		if len(page.Rebuilt) > 0 {
			if _, err := cache.RefreshViews(ctx, page.Rebuilt); err != nil {
				log.Warn("cache refresh after rebuild failed; cached views expire with the cache TTL", "err", err)
			}
		}
		after = page.LastID
	}
}
