package messageapi

import (
	"cmp"
	"slices"
	"time"
)

// ReactionState is one reaction row as the projection sees it: its current
// state, and what the read model last counted of it.
type ReactionState struct {
	ID        string
	MessageID string
	UserID    string
	Type      string
	Score     int
	Deleted   bool
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
	// ProjectedVersion and ProjectedScore are what the last fold of this
	// row recorded: the version it saw and the score it counted (0 when the
	// view does not count the row). A row never folded has 0 and 0.
	ProjectedVersion int64
	ProjectedScore   int
}

// ReactionDelta is a net change to the reactions of one type on one
// message: a difference in their number and in the sum of their scores.
type ReactionDelta struct {
	MessageID string
	Type      string
	Count     int64
	Score     int64
}

// ReactionKey names the reactions of one type on one message.
type ReactionKey struct {
	MessageID string
	Type      string
}

// ProjectedRow is what a fold records about a live row: the version it
// folded and the score the view now counts for it.
type ProjectedRow struct {
	ID      string
	Version int64
	Score   int
}

// Fold is the outcome of folding changed reactions, computed without I/O.
// The caller locks the views of Messages, applies Deltas to them, records
// Projected and purges Purged, all in the transaction that read the states
// under their row locks.
type Fold struct {
	// Messages are the messages whose views change, sorted: the order in
	// which to lock them. A message is here when any of its rows changed,
	// even if the changes cancel out, since its latest reactions differ.
	Messages []string
	// Deltas are the net changes per (message, type), sorted by message
	// and type; changes that cancel out are left out.
	Deltas []ReactionDelta
	// Touched are the (message, type) pairs with a changed row, sorted,
	// whether or not their changes cancel out: the groups whose first and
	// latest reaction times may have moved.
	Touched []ReactionKey
	// Projected are the live rows to record as folded, sorted by id.
	Projected []ProjectedRow
	// Purged are deleted rows the views no longer count. Nothing refers to
	// them any more, so they can be removed. Sorted.
	Purged []string
	// Changes are the changes a client of the live feed sees, one per row
	// that changed, by message and then in the order they were made.
	Changes []ReactionChange
}

// Kinds of ReactionChange, as the live feed names them.
const (
	ReactionNew     = "reaction.new"
	ReactionUpdated = "reaction.updated"
	ReactionDeleted = "reaction.deleted"
)

// ReactionChange is what a fold did to one reaction, as clients see it:
// new (the views did not count it), updated (they counted an older state)
// or deleted (they counted it and no longer do). A reaction posted and
// deleted between two folds was never seen, and makes no change.
type ReactionChange struct {
	Kind     string
	Reaction Reaction
}

// FoldReactions folds rows, the current states of changed reactions read
// under their row locks. For each row it takes back what the view counts
// for it (its projected score) and adds what the view must count now (its
// score, unless it is deleted). That difference is all a fold applies, so
// folding is idempotent (a row folded already adds nothing) and does not
// depend on how many stream entries announced a change, or in which order:
// it always folds the row's latest state. A row listed twice is folded
// once, at its highest version.
func FoldReactions(rows []ReactionState) Fold {
	var f Fold
	sums := deltaSums{}
	touched := map[string]bool{}
	keys := map[ReactionKey]bool{}
	for _, r := range latestStates(rows) {
		if r.Version == r.ProjectedVersion { // folded already
			if r.Deleted {
				f.Purged = append(f.Purged, r.ID)
			}
			continue
		}
		touched[r.MessageID] = true
		keys[ReactionKey{r.MessageID, r.Type}] = true
		if r.ProjectedScore > 0 {
			sums.add(r.MessageID, r.Type, -1, -int64(r.ProjectedScore))
		}
		if change, seen := r.change(); seen {
			f.Changes = append(f.Changes, change)
		}
		if r.Deleted {
			f.Purged = append(f.Purged, r.ID)
			continue
		}
		sums.add(r.MessageID, r.Type, 1, int64(r.Score))
		f.Projected = append(f.Projected, ProjectedRow{ID: r.ID, Version: r.Version, Score: r.Score})
	}
	slices.SortFunc(f.Changes, func(a, b ReactionChange) int {
		return cmp.Or(cmp.Compare(a.Reaction.MessageID, b.Reaction.MessageID),
			a.Reaction.UpdatedAt.Compare(b.Reaction.UpdatedAt.Time), cmp.Compare(a.Reaction.ID, b.Reaction.ID))
	})
	f.Messages = sortedKeys(touched)
	f.Deltas = sums.sorted()
	f.Touched = sortedReactionKeys(keys)
	slices.SortFunc(f.Projected, func(a, b ProjectedRow) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(f.Purged)
	return f
}

// change returns the change a row's fold makes, as clients see it, and
// whether there is one.
func (r ReactionState) change() (ReactionChange, bool) {
	kind := ReactionNew
	switch counted := r.ProjectedScore > 0; {
	case r.Deleted && !counted:
		return ReactionChange{}, false
	case r.Deleted:
		kind = ReactionDeleted
	case counted:
		kind = ReactionUpdated
	}
	return ReactionChange{Kind: kind, Reaction: Reaction{
		ID: r.ID, MessageID: r.MessageID, UserID: r.UserID, Type: r.Type, Score: r.Score,
		CreatedAt: NewTime(r.CreatedAt), UpdatedAt: NewTime(r.UpdatedAt),
	}}, true
}

// RebuildReactions is the fold that recomputes the counts of messages from
// nothing, for views that are emptied first. locked are all the rows the
// rebuild holds locks on: they count at their current state and are
// recorded as folded. kept are rows it could not lock (created after its
// locking read) that a concurrent fold has counted already: they count at
// their projected score and are left as they are.
func RebuildReactions(locked, kept []ReactionState) Fold {
	fresh := make([]ReactionState, len(locked))
	for i, r := range locked {
		r.ProjectedVersion, r.ProjectedScore = 0, 0 // the emptied view counts nothing
		fresh[i] = r
	}
	f := FoldReactions(fresh)
	if len(kept) == 0 {
		return f
	}
	sums := deltaSums{}
	touched := map[string]bool{}
	keys := map[ReactionKey]bool{}
	for _, m := range f.Messages {
		touched[m] = true
	}
	for _, k := range f.Touched {
		keys[k] = true
	}
	for _, d := range append(f.Deltas, CountedTotals(kept)...) {
		sums.add(d.MessageID, d.Type, d.Count, d.Score)
		touched[d.MessageID] = true
		keys[ReactionKey{d.MessageID, d.Type}] = true
	}
	f.Deltas, f.Messages, f.Touched = sums.sorted(), sortedKeys(touched), sortedReactionKeys(keys)
	return f
}

// CountedTotals returns what views should hold, per (message, type), if
// they count exactly what the folds recorded for rows: each row at its
// projected score, or not at all. A view that differs has drifted, since
// no pending change explains the difference.
func CountedTotals(rows []ReactionState) []ReactionDelta {
	sums := deltaSums{}
	for _, r := range latestStates(rows) {
		if r.ProjectedScore > 0 {
			sums.add(r.MessageID, r.Type, 1, int64(r.ProjectedScore))
		}
	}
	return sums.sorted()
}

// deltaSums accumulates deltas per (message, type).
type deltaSums map[[2]string]ReactionDelta

func (s deltaSums) add(messageID, typ string, count, score int64) {
	k := [2]string{messageID, typ}
	d := s[k]
	d.MessageID, d.Type = messageID, typ
	d.Count += count
	d.Score += score
	s[k] = d
}

// sorted returns the sums that are not zero, by message and type.
func (s deltaSums) sorted() []ReactionDelta {
	var out []ReactionDelta
	for _, d := range s {
		if d.Count != 0 || d.Score != 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b ReactionDelta) int {
		return cmp.Or(cmp.Compare(a.MessageID, b.MessageID), cmp.Compare(a.Type, b.Type))
	})
	return out
}

// latestStates returns rows with one state per id, the one with the
// highest version, in their first order.
func latestStates(rows []ReactionState) []ReactionState {
	at := make(map[string]int, len(rows))
	out := make([]ReactionState, 0, len(rows))
	for _, r := range rows {
		i, seen := at[r.ID]
		switch {
		case !seen:
			at[r.ID] = len(out)
			out = append(out, r)
		case r.Version > out[i].Version:
			out[i] = r
		}
	}
	return out
}

func sortedReactionKeys(set map[ReactionKey]bool) []ReactionKey {
	var keys []ReactionKey
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ReactionKey) int {
		return cmp.Or(cmp.Compare(a.MessageID, b.MessageID), cmp.Compare(a.Type, b.Type))
	})
	return keys
}

func sortedKeys(set map[string]bool) []string {
	var keys []string
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FoldLatest brings v.Reactions, the newest live reactions of v's message
// (at most InlineReactions, newest first by created_at then id), up to
// date with the states of some of its reactions, read by a fold under
// their row locks: a live reaction takes its place (a re-score in place, a
// revived one at its new time), a deleted one leaves. A fold so reads no
// reaction it did not change. It reports whether the list must be read
// again instead: when a reaction left a full list, the one that now
// belongs at its end is one no state names.
func (v *MessageView) FoldLatest(states []ReactionState) (reread bool) {
	full := len(v.Reactions) >= InlineReactions
	var moved []string // listed reactions that take a new place
	for _, r := range latestStates(states) {
		if r.MessageID != v.ID {
			continue
		}
		if i := slices.IndexFunc(v.Reactions, func(x Reaction) bool { return x.ID == r.ID }); i >= 0 {
			v.Reactions = slices.Delete(v.Reactions, i, i+1)
			if r.Deleted && full {
				reread = true
			} else if !r.Deleted {
				moved = append(moved, r.ID)
			}
		}
		if !r.Deleted {
			v.Reactions = append(v.Reactions, Reaction{
				ID: r.ID, MessageID: r.MessageID, UserID: r.UserID, Type: r.Type, Score: r.Score,
				CreatedAt: NewTime(r.CreatedAt), UpdatedAt: NewTime(r.UpdatedAt),
			})
		}
	}
	slices.SortFunc(v.Reactions, func(a, b Reaction) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt.Time), cmp.Compare(b.ID, a.ID))
	})
	if full {
		// A listed reaction revived at an earlier time (another host's
		// clock) that now ends the list, or falls off it, may be older
		// than a reaction the list never held.
		last := min(len(v.Reactions), InlineReactions) - 1
		for _, id := range moved {
			if i := slices.IndexFunc(v.Reactions, func(x Reaction) bool { return x.ID == id }); i >= last {
				reread = true
			}
		}
	}
	if len(v.Reactions) > InlineReactions {
		v.Reactions = v.Reactions[:InlineReactions]
	}
	return reread
}

// FoldGroupTimes moves the first and latest reaction times of v's groups
// for the reactions among states that were just inserted (version 1),
// and returns the types whose times must be read again: where a reaction
// that existed before changed (a revive moves its time, and the old one,
// which a read may have taken for the group's even before its fold, is
// not known) or was deleted (it may have been the first or the latest).
// Call it after Apply, so that the groups are those of after the fold.
func (v *MessageView) FoldGroupTimes(states []ReactionState) (reread []string) {
	again := map[string]bool{}
	for _, r := range latestStates(states) {
		if r.MessageID != v.ID || r.Version == r.ProjectedVersion {
			continue
		}
		g, ok := v.ReactionGroups[r.Type]
		switch {
		case r.Deleted || r.ProjectedScore > 0 || r.Version > 1:
			// A delete, or a change of a reaction that existed before
			// (a re-score, a revive): its old time may be the group's,
			// and it is not known. Only a first insert (version 1)
			// just widens the times.
			again[r.Type] = true
			continue
		case !ok:
			continue
		}
		t := NewTime(r.CreatedAt)
		if g.FirstReactionAt.IsZero() || t.Before(g.FirstReactionAt.Time) {
			g.FirstReactionAt = t
		}
		if g.LastReactionAt.IsZero() || t.After(g.LastReactionAt.Time) {
			g.LastReactionAt = t
		}
		v.ReactionGroups[r.Type] = g
	}
	for t := range again {
		if _, ok := v.ReactionGroups[t]; ok {
			reread = append(reread, t)
		}
	}
	slices.Sort(reread)
	return reread
}
