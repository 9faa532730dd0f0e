package messageapi_test

import (
	"encoding/json"
	"fmt"
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
		{"\u3164", false},             // Hangul filler
		{"\u115f\u1160", false},       // Hangul choseong and jungseong fillers
		{"\u2800\u2800", false},       // blank Braille pattern
		{"\u0301", false},             // a lone combining mark
		{" \u20dd ", false},           // an enclosing mark with nothing to enclose
		{"e\u0301", true},             // a mark on a letter shows
		{"\u2801", true},              // a Braille dot shows
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

func TestInvalidFieldsIsBounded(t *testing.T) {
	fields := messageapi.FieldErrors{}
	for i := range 2000 {
		fields.Add(fmt.Sprintf("p%04d", i), "is not a known parameter")
	}
	fields.Add(strings.Repeat("n", 10_000), "is not a known parameter")
	err := fields.Err()
	got := messageapi.ErrorFields(err)
	if len(got) != messageapi.MaxErrorFields || got["p0000"] == "" {
		t.Errorf("%d fields listed, want the first %d by name", len(got), messageapi.MaxErrorFields)
	}
	for name := range got {
		if len(name) > messageapi.MaxFieldName+len("…") {
			t.Errorf("field name of %d bytes listed", len(name))
		}
	}
	if msg := messageapi.ErrorMessage(err); !strings.Contains(msg, "2001 problems") {
		t.Errorf("message %q does not say how many problems there are", msg)
	}
	one := messageapi.FieldErrors{strings.Repeat("x", 100): "is not a known field"}
	for name := range messageapi.ErrorFields(one.Err()) {
		if len(name) > messageapi.MaxFieldName+len("…") {
			t.Errorf("a long field name is listed whole (%d bytes)", len(name))
		}
	}
}

func TestWithOwnReactions(t *testing.T) {
	v, err := messageapi.NewMessageView(messageapi.Message{ID: "m1", Text: "hi"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	cached := string(v.JSON)
	own := []messageapi.Reaction{{ID: "r1", MessageID: "m1", UserID: "u", Type: "like", Score: 2}}
	with, err := v.WithOwnReactions(own)
	if err != nil {
		t.Fatal(err)
	}
	var got messageapi.MessageView
	if err := json.Unmarshal(with.JSON, &got); err != nil {
		t.Fatalf("spliced JSON %s: %v", with.JSON, err)
	}
	if got.Text != "hi" || got.OwnReactions == nil || len(*got.OwnReactions) != 1 || (*got.OwnReactions)[0].Type != "like" {
		t.Errorf("spliced view = %s", with.JSON)
	}
	if string(v.JSON) != cached {
		t.Error("splicing changed the cached bytes")
	}
	none, err := v.WithOwnReactions(nil)
	if err != nil || !strings.HasSuffix(string(none.JSON), `,"own_reactions":[]}`) {
		t.Errorf("no own reactions = %s, %v; want an empty list", none.JSON, err)
	}
	if _, err := (messageapi.EncodedView{ID: "x", JSON: []byte(`[1]`)}).WithOwnReactions(nil); err == nil {
		t.Error("spliced into something that is not an object")
	}
}
