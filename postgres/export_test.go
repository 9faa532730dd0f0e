package postgres

import "context"

// MigrateTo migrates to one version, for tests of a migration's upgrade of
// existing data.
func (db *DB) MigrateTo(ctx context.Context, version int32) error { return db.migrateTo(ctx, version) }

// Queued is how many writes wait for a committer.
func (s *GroupCommitStore) Queued() int { return len(s.queue) }
