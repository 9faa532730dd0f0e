package messageapi_test

import (
	"strings"
	"testing"

	"messageapi"
)

func TestValidText(t *testing.T) {
	tests := []struct {
		text string
		ok   bool
	}{
		{"hello", true},
		{"a", true},
		{strings.Repeat("é", messageapi.MaxTextLength), true}, // characters, not bytes
		{strings.Repeat("é", messageapi.MaxTextLength+1), false},
		{"", false},
		{" \t\n ", false},
		{"\u200b\u2060\ufeff", false}, // zero-width space, word joiner, byte order mark
		{"hi\u200b", true},
		{"nul\x00byte", false},
		{"bad \xff utf-8", false},
		{"😀", true},
	}
	for _, tt := range tests {
		if got := messageapi.ValidText(tt.text); got != tt.ok {
			t.Errorf("ValidText(%q) = %v, want %v", tt.text, got, tt.ok)
		}
	}
}

func TestValidUserID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"alice", true},
		{"A.b_c-d@example.com", true},
		{strings.Repeat("u", messageapi.MaxUserIDLength), true},
		{strings.Repeat("u", messageapi.MaxUserIDLength+1), false},
		{"", false},
		{"a b", false},
		{"alice!", false},
		{"ålice", false},
	}
	for _, tt := range tests {
		if got := messageapi.ValidUserID(tt.id); got != tt.ok {
			t.Errorf("ValidUserID(%q) = %v, want %v", tt.id, got, tt.ok)
		}
	}
}

func TestValidUUIDBraces(t *testing.T) {
	const id = "01a21b77-d171-76be-88ab-728585d7e80f"
	for s, ok := range map[string]bool{
		id:               true,
		"{" + id + "}":   true,
		"urn:uuid:" + id: true,
		"x" + id + "y":   false,
		"(" + id + ")":   false,
		"{" + id + "{":   false,
	} {
		if got := messageapi.ValidUUIDBraces(s); got != ok {
			t.Errorf("ValidUUIDBraces(%q) = %v, want %v", s, got, ok)
		}
	}
}

func TestValidReactionType(t *testing.T) {
	tests := []struct {
		typ string
		ok  bool
	}{
		{"like", true},
		{"+1", true},
		{"thumbs_up-2", true},
		{strings.Repeat("x", messageapi.MaxReactionTypeLength), true},
		{strings.Repeat("x", messageapi.MaxReactionTypeLength+1), false},
		{"", false},
		{"Like", false},
		{"like!", false},
		{"a b", false},
	}
	for _, tt := range tests {
		if got := messageapi.ValidReactionType(tt.typ); got != tt.ok {
			t.Errorf("ValidReactionType(%q) = %v, want %v", tt.typ, got, tt.ok)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	f := messageapi.FieldErrors{}
	if f.Err() != nil {
		t.Fatal("no reasons, yet an error")
	}
	if !f.Check(true, "text", "unused") || f.Has("text") {
		t.Fatal("a passing check recorded a reason")
	}
	f.Check(false, "text", messageapi.RequiredRule)
	f.Check(false, "text", messageapi.TextRule) // the first reason stays
	f.Add("limit", messageapi.LimitRule)
	err := f.Err()
	if messageapi.ErrorCode(err) != messageapi.EINVALID {
		t.Fatalf("code = %q, want %q", messageapi.ErrorCode(err), messageapi.EINVALID)
	}
	fields := messageapi.ErrorFields(err)
	if len(fields) != 2 || fields["text"] != messageapi.RequiredRule || fields["limit"] != messageapi.LimitRule {
		t.Errorf("fields = %v", fields)
	}
}
