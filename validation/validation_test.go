package validation

import (
	"maps"
	"strings"
	"testing"

	"messageapi"
)

type request struct {
	ID     string  `json:"-" field:"id" validate:"uuid"`
	Text   string  `json:"text" validate:"required,text"`
	User   string  `json:"user_id,omitempty" validate:"required,user_id"`
	Client string  `json:"client_id" validate:"omitempty,uuidv7"`
	Score  *int    `json:"score" validate:"omitnil,score"`
	Type   *string `field:"type" validate:"omitnil,reaction_type"`
	Limit  *int    `field:"limit" validate:"omitnil,limit"`
}

func ptr[T any](v T) *T { return &v }

func TestCheckNamesEachBadFieldWithItsRule(t *testing.T) {
	good := request{ID: "0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", Text: "hi", User: "alice"}
	if f := Check(good); len(f) != 0 {
		t.Fatalf("a good request: %v", f)
	}
	tests := []struct {
		name string
		edit func(*request)
		want map[string]string
	}{
		{"empty strings", func(r *request) { r.ID, r.Text, r.User = "", "", "" },
			map[string]string{"id": messageapi.UUIDRule, "text": messageapi.RequiredRule, "user_id": messageapi.RequiredRule}},
		{"bad values", func(r *request) {
			r.ID, r.Text, r.User, r.Client = "{0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f", " ", "al ice", "0192f0a4-8a4b-4cc1-9e8a-5a3b1c2d3e4f"
		}, map[string]string{"id": messageapi.UUIDRule, "text": messageapi.TextRule, "user_id": messageapi.UserIDRule, "client_id": messageapi.UUIDv7Rule}},
		{"numbers out of range", func(r *request) { r.Score, r.Limit = ptr(messageapi.MaxScore+1), ptr(0) },
			map[string]string{"score": messageapi.ScoreRule, "limit": messageapi.LimitRule}},
		{"numbers at the edges", func(r *request) { r.Score, r.Limit = ptr(messageapi.MinScore), ptr(messageapi.MaxPageSize) }, map[string]string{}},
		{"an optional string present and bad", func(r *request) { r.Type = ptr("Like") },
			map[string]string{"type": messageapi.ReactionTypeRule}},
		{"an optional string present and empty", func(r *request) { r.Type = ptr("") },
			map[string]string{"type": messageapi.ReactionTypeRule}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			if got := Check(r); !maps.Equal(got, messageapi.FieldErrors(tt.want)) {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValueAndValid(t *testing.T) {
	f := messageapi.FieldErrors{}
	if !Value(f, "page", 1, "page") || Value(f, "page", 0, "page") || f["page"] != messageapi.PageRule {
		t.Errorf("page: %v", f)
	}
	if Value(f, "page", -1, "page"); f["page"] != messageapi.PageRule {
		t.Errorf("the first reason is kept: %v", f)
	}
	for _, c := range []struct {
		value, tag string
		ok         bool
	}{
		{"1700000000000-0", "feed_position", true},
		{"1700000000000", "feed_position", true},
		{"x-1", "feed_position", false},
		{strings.Repeat("1", 42), "feed_position", false},
		{"30s", "event_duration", true},
		{"1h", "event_duration", true},
		{"999ms", "event_duration", false},
		{"61m", "event_duration", false},
		{"soon", "event_duration", false},
	} {
		if ok, why := Valid(c.value, c.tag); ok != c.ok || ok != (why == "") {
			t.Errorf("Valid(%q, %s) = %v, %q; want %v", c.value, c.tag, ok, why, c.ok)
		}
	}
}

func TestEveryRuleHasItsText(t *testing.T) {
	for tag, r := range rules {
		if r.text == "" || text(tag, "") != r.text {
			t.Errorf("rule %s has no text", tag)
		}
	}
	if CanonicalUUID("{0192F0A4-8A4B-7CC1-9E8A-5A3B1C2D3E4F}") != "0192f0a4-8a4b-7cc1-9e8a-5a3b1c2d3e4f" {
		t.Error("CanonicalUUID does not give the canonical form")
	}
}
