package postgres

// Queued is how many writes wait for a committer.
func (s *GroupCommitStore) Queued() int { return len(s.queue) }
