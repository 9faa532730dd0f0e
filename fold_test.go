package messageapi_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"messageapi"
)

// row is a reaction state in one line: id, message, type, score, deleted,
// version, projected version and projected score.
func row(id, message, typ string, score int, deleted bool, version, projectedVersion int64, projectedScore int) messageapi.ReactionState {
	return messageapi.ReactionState{
		ID: id, MessageID: message, Type: typ, Score: score, Deleted: deleted,
		Version: version, ProjectedVersion: projectedVersion, ProjectedScore: projectedScore,
	}
}

func delta(message, typ string, count, score int64) messageapi.ReactionDelta {
	return messageapi.ReactionDelta{MessageID: message, Type: typ, Count: count, Score: score}
}

func TestFoldReactions(t *testing.T) {
	tests := []struct {
		name string
		rows []messageapi.ReactionState
		want messageapi.Fold
	}{
		{
			name: "nothing",
			want: messageapi.Fold{},
		},
		{
			name: "insert",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, false, 1, 0, 0)},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 1, 3)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 1, Score: 3}},
			},
		},
		{
			name: "re-score: the count stays, the score moves by the difference",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 10, false, 2, 1, 3)},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 0, 7)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 2, Score: 10}},
			},
		},
		{
			name: "re-score to the same score: no delta, but the view is rewritten (its latest reactions changed)",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, false, 2, 1, 3)},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 2, Score: 3}},
			},
		},
		{
			name: "delete of a counted reaction",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, true, 2, 1, 3)},
			want: messageapi.Fold{
				Messages: []string{"m1"},
				Deltas:   []messageapi.ReactionDelta{delta("m1", "like", -1, -3)},
				Touched:  []messageapi.ReactionKey{{"m1", "like"}},
				Purged:   []string{"r1"},
			},
		},
		{
			name: "insert then delete before any fold: nothing to count, the tombstone goes",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, true, 2, 0, 0)},
			want: messageapi.Fold{Messages: []string{"m1"}, Touched: []messageapi.ReactionKey{{"m1", "like"}}, Purged: []string{"r1"}},
		},
		{
			name: "revive: deleted and posted again, counted afresh with its new score",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 4, false, 3, 1, 2)},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 0, 2)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 3, Score: 4}},
			},
		},
		{
			name: "folded already: a duplicate delivery changes nothing",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, false, 2, 2, 3)},
			want: messageapi.Fold{},
		},
		{
			name: "a tombstone folded already is only purged",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 3, true, 2, 2, 0)},
			want: messageapi.Fold{Purged: []string{"r1"}},
		},
		{
			name: "the same row twice: folded once, at its highest version",
			rows: []messageapi.ReactionState{
				row("r1", "m1", "like", 5, false, 2, 0, 0),
				row("r1", "m1", "like", 9, false, 3, 0, 0),
				row("r1", "m1", "like", 5, false, 2, 0, 0),
			},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 1, 9)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 3, Score: 9}},
			},
		},
		{
			name: "out of order: versions 2 to 5 arrive as one state, applied at once from what was counted",
			rows: []messageapi.ReactionState{row("r1", "m1", "like", 8, false, 5, 1, 1)},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 0, 7)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{ID: "r1", Version: 5, Score: 8}},
			},
		},
		{
			name: "many changes to one message coalesce per type",
			rows: []messageapi.ReactionState{
				row("r3", "m1", "like", 2, false, 1, 0, 0),
				row("r1", "m1", "like", 1, false, 1, 0, 0),
				row("r2", "m1", "love", 5, false, 1, 0, 0),
				row("r4", "m1", "like", 1, true, 2, 1, 4),
				row("r5", "m1", "love", 6, false, 2, 1, 5),
			},
			want: messageapi.Fold{
				Messages: []string{"m1"},
				Deltas: []messageapi.ReactionDelta{
					delta("m1", "like", 1, -1), // +1 +2 -4, one more reaction
					delta("m1", "love", 1, 6),  // +5, and +1 from a re-score
				},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}, {"m1", "love"}},
				Projected: []messageapi.ProjectedRow{{"r1", 1, 1}, {"r2", 1, 5}, {"r3", 1, 2}, {"r5", 2, 6}},
				Purged:    []string{"r4"},
			},
		},
		{
			name: "changes that cancel out leave no delta, but the message is rewritten",
			rows: []messageapi.ReactionState{
				row("r1", "m1", "like", 2, false, 1, 0, 0),
				row("r2", "m1", "like", 2, true, 2, 1, 2),
			},
			want: messageapi.Fold{
				Messages:  []string{"m1"},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}},
				Projected: []messageapi.ProjectedRow{{"r1", 1, 2}},
				Purged:    []string{"r2"},
			},
		},
		{
			name: "several messages: locked in id order",
			rows: []messageapi.ReactionState{
				row("r1", "m2", "like", 1, false, 1, 0, 0),
				row("r2", "m1", "like", 1, false, 1, 0, 0),
			},
			want: messageapi.Fold{
				Messages:  []string{"m1", "m2"},
				Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 1, 1), delta("m2", "like", 1, 1)},
				Touched:   []messageapi.ReactionKey{{"m1", "like"}, {"m2", "like"}},
				Projected: []messageapi.ProjectedRow{{"r1", 1, 1}, {"r2", 1, 1}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messageapi.FoldReactions(tt.rows)
			got.Changes = nil // TestFoldChanges
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FoldReactions =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestFoldChanges: what a fold tells the live feed about each row, in the
// order the changes were made, per message.
func TestFoldChanges(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_790_000_000+int64(s), 0) }
	rows := []messageapi.ReactionState{
		{ID: "r1", MessageID: "m1", Type: "like", Score: 2, UpdatedAt: at(3), Version: 1},                                         // never counted, live: new
		{ID: "r2", MessageID: "m1", Type: "like", Score: 5, UpdatedAt: at(1), Version: 3, ProjectedVersion: 2, ProjectedScore: 4}, // counted, live: updated
		{ID: "r3", MessageID: "m1", Type: "like", Deleted: true, UpdatedAt: at(2), Version: 2, ProjectedVersion: 1, ProjectedScore: 1},
		{ID: "r4", MessageID: "m1", Type: "like", Deleted: true, UpdatedAt: at(0), Version: 2}, // posted and deleted unseen
		{ID: "r5", MessageID: "m0", Type: "wow", Score: 1, UpdatedAt: at(9), Version: 1},
		{ID: "r6", MessageID: "m1", Type: "like", Score: 1, UpdatedAt: at(5), Version: 4, ProjectedVersion: 4, ProjectedScore: 1}, // folded already
	}
	var got []string
	for _, c := range messageapi.FoldReactions(rows).Changes {
		got = append(got, c.Reaction.MessageID+":"+c.Reaction.ID+":"+c.Kind)
	}
	want := []string{"m0:r5:reaction.new", "m1:r2:reaction.updated", "m1:r3:reaction.deleted", "m1:r1:reaction.new"}
	if !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
}

// TestFoldIsIdempotent folds a batch, records what it projected as the
// database would, and folds the result again: nothing is left to apply.
func TestFoldIsIdempotent(t *testing.T) {
	rows := []messageapi.ReactionState{
		row("r1", "m1", "like", 3, false, 4, 2, 1),
		row("r2", "m1", "love", 1, true, 2, 1, 1),
		row("r3", "m2", "like", 7, false, 1, 0, 0),
	}
	first := messageapi.FoldReactions(rows)
	var after []messageapi.ReactionState
	for _, p := range first.Projected {
		for _, r := range rows {
			if r.ID == p.ID {
				r.ProjectedVersion, r.ProjectedScore = p.Version, p.Score
				after = append(after, r)
			}
		}
	}
	if again := messageapi.FoldReactions(after); !reflect.DeepEqual(again, messageapi.Fold{}) {
		t.Errorf("second fold = %+v, want nothing", again)
	}
}

// TestFoldEqualsTotals: whatever the order in which a message's changes are
// folded, in one batch or many, the view ends at the aggregate over its
// live reactions.
func TestFoldEqualsTotals(t *testing.T) {
	type change struct {
		id    string
		score int // 0 deletes
	}
	history := []change{{"a", 1}, {"b", 2}, {"a", 5}, {"c", 3}, {"b", 0}, {"a", 0}, {"a", 4}, {"d", 1}}
	for split := 1; split <= len(history); split++ {
		state := map[string]messageapi.ReactionState{}
		view := messageapi.NewMessageView(messageapi.Message{ID: "m1"})
		apply := func(rows []messageapi.ReactionState) {
			f := messageapi.FoldReactions(rows)
			view.Apply(f.Deltas)
			for _, p := range f.Projected {
				r := state[p.ID]
				r.ProjectedVersion, r.ProjectedScore = p.Version, p.Score
				state[p.ID] = r
			}
			for _, id := range f.Purged {
				delete(state, id)
			}
		}
		var batch []messageapi.ReactionState
		for i, c := range history {
			r, ok := state[c.id]
			if !ok {
				r = row(c.id, "m1", "like", 0, false, 0, 0, 0)
			}
			r.Version++
			r.Deleted = c.score == 0
			if c.score > 0 {
				r.Score = c.score
			}
			state[c.id] = r
			batch = append(batch, r)
			if (i+1)%split == 0 {
				apply(batch)
				batch = nil
			}
		}
		apply(batch)
		// The live reactions are c (3), a (4) and d (1).
		if view.ReactionCount != 3 || view.ReactionCounts["like"] != 3 || view.ReactionScores["like"] != 8 {
			t.Errorf("folded in batches of %d: count %d %v scores %v; want 3, like 3, like 8",
				split, view.ReactionCount, view.ReactionCounts, view.ReactionScores)
		}
	}
}

func TestRebuildReactions(t *testing.T) {
	locked := []messageapi.ReactionState{
		row("r1", "m1", "like", 3, false, 2, 1, 1), // counted at 1 so far: the rebuild counts 3
		row("r2", "m1", "like", 2, true, 3, 2, 2),  // a tombstone: not counted, purged
		row("r3", "m1", "love", 4, false, 1, 1, 4), // folded already: counted again from zero
	}
	kept := []messageapi.ReactionState{
		row("r4", "m1", "love", 9, false, 2, 1, 6), // folded by a concurrent fold at 6: counted at 6
	}
	got := messageapi.RebuildReactions(locked, kept)
	got.Changes = nil
	want := messageapi.Fold{
		Messages:  []string{"m1"},
		Deltas:    []messageapi.ReactionDelta{delta("m1", "like", 1, 3), delta("m1", "love", 2, 10)},
		Touched:   []messageapi.ReactionKey{{"m1", "like"}, {"m1", "love"}},
		Projected: []messageapi.ProjectedRow{{"r1", 2, 3}, {"r3", 1, 4}},
		Purged:    []string{"r2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RebuildReactions =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCountedTotals(t *testing.T) {
	rows := []messageapi.ReactionState{
		row("r1", "m1", "like", 3, false, 2, 1, 1), // counted at 1, whatever its score now
		row("r2", "m1", "like", 2, false, 1, 0, 0), // never folded: not counted
		row("r3", "m1", "love", 4, true, 2, 1, 4),  // deleted, but still counted until folded
	}
	got := messageapi.CountedTotals(rows)
	want := []messageapi.ReactionDelta{delta("m1", "like", 1, 1), delta("m1", "love", 1, 4)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountedTotals = %+v, want %+v", got, want)
	}
}

func TestViewApply(t *testing.T) {
	v := messageapi.NewMessageView(messageapi.Message{ID: "m1"})
	steps := []struct {
		deltas []messageapi.ReactionDelta
		want   string
	}{
		{[]messageapi.ReactionDelta{delta("m1", "like", 2, 5), delta("m1", "love", 1, 1)}, "3 map[like:2 love:1] map[like:5 love:1]"},
		{[]messageapi.ReactionDelta{delta("m2", "like", 9, 9)}, "3 map[like:2 love:1] map[like:5 love:1]"}, // another message's
		{[]messageapi.ReactionDelta{delta("m1", "like", 0, 3)}, "3 map[like:2 love:1] map[like:8 love:1]"},
		{[]messageapi.ReactionDelta{delta("m1", "love", -1, -1)}, "2 map[like:2] map[like:8]"}, // a type at zero disappears
		{[]messageapi.ReactionDelta{delta("m1", "like", -2, -8)}, "0 map[] map[]"},
	}
	for i, s := range steps {
		v.Apply(s.deltas)
		if got := fmt.Sprint(v.ReactionCount, " ", v.ReactionCounts, " ", v.ReactionScores); got != s.want {
			t.Errorf("step %d: %s, want %s", i+1, got, s.want)
		}
	}
	rebuilt := messageapi.NewMessageView(messageapi.Message{ID: "m1"})
	if !v.CountsEqual(rebuilt) || len(v.ReactionGroups) != 0 {
		t.Error("an emptied view differs from a new one")
	}
}

func TestViewGroups(t *testing.T) {
	v := messageapi.NewMessageView(messageapi.Message{ID: "m1"})
	first, last := time.UnixMilli(1_790_000_000_000), time.UnixMilli(1_790_000_060_000)
	v.Apply([]messageapi.ReactionDelta{delta("m1", "like", 2, 5)})
	v.SetGroupTimes("like", first, last)
	v.SetGroupTimes("love", first, last) // no such group: nothing happens
	want := map[string]messageapi.ReactionGroup{"like": {Count: 2, SumScores: 5,
		FirstReactionAt: messageapi.NewTime(first), LastReactionAt: messageapi.NewTime(last)}}
	if !maps.Equal(v.ReactionGroups, want) {
		t.Fatalf("groups = %+v, want %+v", v.ReactionGroups, want)
	}
	// Deltas move the count and the sum, never the times.
	v.Apply([]messageapi.ReactionDelta{delta("m1", "like", -1, -2)})
	if g := v.ReactionGroups["like"]; g.Count != 1 || g.SumScores != 3 || !g.FirstReactionAt.Equal(first) {
		t.Errorf("after a delete: %+v", g)
	}
	// A group disappears with its last reaction.
	v.Apply([]messageapi.ReactionDelta{delta("m1", "like", -1, -3)})
	if _, ok := v.ReactionGroups["like"]; ok || v.ReactionCounts["like"] != 0 {
		t.Errorf("groups %+v counts %v after the last reaction went", v.ReactionGroups, v.ReactionCounts)
	}
}

// at makes a state created and updated at minute min.
func at(r messageapi.ReactionState, min int) messageapi.ReactionState {
	r.CreatedAt = time.Date(2026, 12, 1, 0, min, 0, 0, time.UTC)
	r.UpdatedAt = r.CreatedAt
	return r
}

// ids lists the ids of reactions, in order.
func ids(rs []messageapi.Reaction) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.ID
	}
	return fmt.Sprint(s)
}

// TestFoldLatest: a fold keeps the newest reactions without reading the
// others: new ones take their place, re-scores stay where they are,
// revives move to their new time, deletes leave, and a delete from a full
// list asks for a read, since the next newest is not among the states.
func TestFoldLatest(t *testing.T) {
	view := func(n int) messageapi.MessageView {
		v := messageapi.MessageView{Message: messageapi.Message{ID: "m"}}
		for i := n; i >= 1; i-- { // newest first: r<n> at minute n
			v.Reactions = append(v.Reactions, messageapi.Reaction{ID: fmt.Sprintf("r%02d", i), MessageID: "m",
				CreatedAt: messageapi.NewTime(time.Date(2026, 12, 1, 0, i, 0, 0, time.UTC))})
		}
		return v
	}
	tests := []struct {
		name       string
		before     int
		states     []messageapi.ReactionState
		want       string
		wantReread bool
	}{
		{"new into an empty list", 0, []messageapi.ReactionState{at(row("r01", "m", "like", 1, false, 1, 0, 0), 1)}, "[r01]", false},
		{"new on top of a full list drops the oldest", 10, []messageapi.ReactionState{at(row("r20", "m", "like", 1, false, 1, 0, 0), 20)},
			"[r20 r10 r09 r08 r07 r06 r05 r04 r03 r02]", false},
		{"a late commit older than a full list stays out", 10, []messageapi.ReactionState{at(row("r00", "m", "like", 1, false, 1, 0, 0), 0)},
			"[r10 r09 r08 r07 r06 r05 r04 r03 r02 r01]", false},
		{"a late commit fits a short list in time order", 3, []messageapi.ReactionState{at(row("r00", "m", "like", 1, false, 1, 0, 0), 0)},
			"[r03 r02 r01 r00]", false},
		{"a re-score stays in place", 3, []messageapi.ReactionState{at(row("r02", "m", "like", 9, false, 2, 0, 1), 2)}, "[r03 r02 r01]", false},
		{"a revive moves to its new time", 3, []messageapi.ReactionState{at(row("r01", "m", "like", 1, false, 3, 0, 1), 30)}, "[r01 r03 r02]", false},
		{"a delete from a short list", 3, []messageapi.ReactionState{at(row("r02", "m", "like", 1, true, 2, 0, 1), 2)}, "[r03 r01]", false},
		{"a delete from a full list asks for a read", 10, []messageapi.ReactionState{at(row("r05", "m", "like", 1, true, 2, 0, 1), 5)},
			"[r10 r09 r08 r07 r06 r04 r03 r02 r01]", true},
		{"a revive at an earlier time (another host's clock) to the end of a full list asks for a read", 10,
			[]messageapi.ReactionState{at(row("r05", "m", "like", 1, false, 3, 0, 1), 0)}, "[r10 r09 r08 r07 r06 r04 r03 r02 r01 r05]", true},
		{"a delete of a reaction not listed", 10, []messageapi.ReactionState{at(row("r77", "m", "like", 1, true, 2, 0, 1), 0)},
			"[r10 r09 r08 r07 r06 r05 r04 r03 r02 r01]", false},
		{"posted and deleted between folds: never listed", 2, []messageapi.ReactionState{
			at(row("r05", "m", "like", 1, false, 1, 0, 0), 5), at(row("r05", "m", "like", 1, true, 2, 0, 0), 5)}, "[r02 r01]", false},
		{"another message's state is ignored", 2, []messageapi.ReactionState{at(row("r09", "other", "like", 1, false, 1, 0, 0), 9)}, "[r02 r01]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := view(tt.before)
			reread := v.FoldLatest(tt.states)
			if got := ids(v.Reactions); got != tt.want || reread != tt.wantReread {
				t.Errorf("latest = %s, reread %v; want %s, %v", got, reread, tt.want, tt.wantReread)
			}
		})
	}
}

// TestFoldGroupTimes: new reactions move a group's times without a read;
// a changed or deleted counted reaction, or any delete, asks for one.
func TestFoldGroupTimes(t *testing.T) {
	minute := func(m int) messageapi.Time { return messageapi.NewTime(time.Date(2026, 12, 1, 0, m, 0, 0, time.UTC)) }
	v := messageapi.MessageView{Message: messageapi.Message{ID: "m"}, ReactionGroups: map[string]messageapi.ReactionGroup{
		"like": {Count: 3, SumScores: 3, FirstReactionAt: minute(5), LastReactionAt: minute(10)},
		"love": {Count: 1, SumScores: 1, FirstReactionAt: minute(7), LastReactionAt: minute(7)},
		"new":  {Count: 1, SumScores: 1}, // made by Apply in this fold
		"wow":  {Count: 2, SumScores: 2, FirstReactionAt: minute(1), LastReactionAt: minute(2)},
	}}
	reread := v.FoldGroupTimes([]messageapi.ReactionState{
		at(row("a", "m", "like", 1, false, 1, 0, 0), 12), // later than the latest
		at(row("b", "m", "like", 1, false, 1, 0, 0), 3),  // earlier than the first
		at(row("c", "m", "new", 1, false, 1, 0, 0), 8),
		at(row("d", "m", "love", 4, false, 2, 0, 1), 30), // counted: a re-score or a revive
		at(row("e", "m", "wow", 1, true, 2, 0, 1), 1),    // a delete
		at(row("f", "m", "gone", 1, true, 2, 0, 1), 1),   // a delete that emptied its group
		at(row("g", "m", "like", 1, false, 4, 4, 1), 99), // folded already: nothing
		at(row("h", "m", "new", 1, false, 3, 0, 0), 50),  // revived before its first fold: a read may have seen its old time
	})
	if fmt.Sprint(reread) != "[love new wow]" {
		t.Errorf("reread = %v, want [love new wow]", reread)
	}
	want := map[string][2]messageapi.Time{"like": {minute(3), minute(12)}, "new": {minute(8), minute(8)}, "love": {minute(7), minute(7)}}
	for typ, w := range want {
		if g := v.ReactionGroups[typ]; !g.FirstReactionAt.Equal(w[0].Time) || !g.LastReactionAt.Equal(w[1].Time) {
			t.Errorf("%s: first %v last %v, want %v %v", typ, g.FirstReactionAt, g.LastReactionAt, w[0], w[1])
		}
	}
}
