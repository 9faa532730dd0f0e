package postgres

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"messageapi"
)

// TestViewColumnsReadBothForms: a view's JSON columns read the same
// whether a row holds the compact form the projection writes now or the
// object form of rows written before migration 012, and the compact form
// round-trips.
func TestViewColumnsReadBothForms(t *testing.T) {
	at := func(s string) messageapi.Time {
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return messageapi.NewTime(p)
	}
	const msg = "01a21b77-d171-76be-88ab-728585d7e80f"
	wantReactions := []messageapi.Reaction{
		{ID: "01a21b77-d1d3-73c2-b778-2c2b4f9f0587", MessageID: msg, UserID: "bob", Type: "like", Score: 5,
			CreatedAt: at("2026-11-27T05:26:07.059Z"), UpdatedAt: at("2026-11-27T05:30:00.001Z")},
		{ID: "01a21b77-d1d3-73c2-b778-2c2b4f9f0588", MessageID: msg, UserID: "a\"quote", Type: "clap", Score: 1,
			CreatedAt: at("2026-11-27T05:26:07.000Z"), UpdatedAt: at("2026-11-27T05:26:07.000Z")},
	}
	wantGroups := map[string]messageapi.ReactionGroup{
		"like": {Count: 3, SumScores: 9, FirstReactionAt: at("2026-11-27T05:26:07.059Z"), LastReactionAt: at("2026-11-27T06:00:00.999Z")},
		"clap": {Count: 1, SumScores: 1, FirstReactionAt: at("2026-11-27T05:26:07Z"), LastReactionAt: at("2026-11-27T05:26:07Z")},
	}

	objectReactions := `[{"id":"01a21b77-d1d3-73c2-b778-2c2b4f9f0587","message_id":"` + msg + `","user_id":"bob","type":"like","score":5,
		"created_at":"2026-11-27T05:26:07.059Z","updated_at":"2026-11-27T05:30:00.001Z"},
		{"id":"01a21b77-d1d3-73c2-b778-2c2b4f9f0588","message_id":"` + msg + `","user_id":"a\"quote","type":"clap","score":1,
		"created_at":"2026-11-27T05:26:07.000Z","updated_at":"2026-11-27T05:26:07.000Z"}]`
	objectGroups := `{"like":{"count":3,"sum_scores":9,"first_reaction_at":"2026-11-27T05:26:07.059Z","last_reaction_at":"2026-11-27T06:00:00.999Z"},
		"clap":{"count":1,"sum_scores":1,"first_reaction_at":"2026-11-27T05:26:07.000Z","last_reaction_at":"2026-11-27T05:26:07.000Z"}}`
	compactReactions, err := encodeReactions(wantReactions)
	if err != nil {
		t.Fatal(err)
	}
	compactGroups := encodeGroups(wantGroups)
	if len(compactReactions) >= len(objectReactions)/2 {
		t.Errorf("compact reactions take %d bytes, the object form %d: want less than half", len(compactReactions), len(objectReactions))
	}
	// The second reaction was never updated: no sixth element.
	if want := `["01a21b77-d1d3-73c2-b778-2c2b4f9f0588","a\"quote","clap",1,1795757167000]`; !json.Valid(compactReactions) ||
		!strings.Contains(string(compactReactions), want) {
		t.Errorf("compact reactions = %s, want an element %s", compactReactions, want)
	}

	for name, src := range map[string][2]string{
		"object":  {objectReactions, objectGroups},
		"compact": {string(compactReactions), string(compactGroups)},
	} {
		var rs storedReactions
		var gs storedGroups
		if err := json.Unmarshal([]byte(src[0]), &rs); err != nil {
			t.Fatalf("%s reactions: %v", name, err)
		}
		if err := json.Unmarshal([]byte(src[1]), &gs); err != nil {
			t.Fatalf("%s groups: %v", name, err)
		}
		if got := rs.of(msg); !reflect.DeepEqual(got, wantReactions) {
			t.Errorf("%s reactions = %+v, want %+v", name, got, wantReactions)
		}
		if !reflect.DeepEqual(map[string]messageapi.ReactionGroup(gs), wantGroups) {
			t.Errorf("%s groups = %+v, want %+v", name, gs, wantGroups)
		}
	}
	// As PostgreSQL prints jsonb, spaced, and without escapes: the scanner
	// of the compact form reads it, and agrees with encoding/json.
	printed := `[["01a21b77-d1d3-73c2-b778-2c2b4f9f0587", "bob", "like", 5, 1795757167059, 1795757400001], ["id2", "carol", "clap", 1, 1795757167000]]`
	fast, ok := scanCompactReactions([]byte(printed))
	if !ok || len(fast) != 2 {
		t.Fatalf("scanCompactReactions(%s) = %v, %v", printed, fast, ok)
	}
	var slow []json.RawMessage
	if err := json.Unmarshal([]byte(printed), &slow); err != nil {
		t.Fatal(err)
	}
	if fast[0].ID != wantReactions[0].ID || fast[0].Score != 5 || !fast[0].UpdatedAt.Equal(wantReactions[0].UpdatedAt.Time) ||
		fast[1].UserID != "carol" || !fast[1].UpdatedAt.Equal(fast[1].CreatedAt.Time) {
		t.Errorf("scanned %+v", fast)
	}
	for _, other := range []string{objectReactions, `[["a\"b", "u", "like", 1, 2]]`, `[["a", "u", "like", 1]]`, `[["a", "u", "like", 1, 2] x]`, `[`} {
		if _, ok := scanCompactReactions([]byte(other)); ok {
			t.Errorf("scanCompactReactions(%s) read it; want it left to encoding/json", other)
		}
	}
	var empty storedReactions
	if err := json.Unmarshal([]byte(`[]`), &empty); err != nil || empty.of(msg) == nil || len(empty.of(msg)) != 0 {
		t.Errorf("[] = %#v, %v; want an empty, non-nil list", empty.of(msg), err)
	}
	for _, bad := range []string{`[["id","u","like"]]`, `[1]`, `{}`} {
		var rs storedReactions
		if err := json.Unmarshal([]byte(bad), &rs); err == nil {
			t.Errorf("latest_reactions %s read without error", bad)
		}
	}
}
