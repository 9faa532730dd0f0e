package command

import (
	"fmt"
	"strings"
	"testing"

	"messageapi"
)

// wantFields checks that err names exactly the fields given.
func wantFields(t *testing.T, name string, err error, fields ...string) {
	t.Helper()
	got := messageapi.ErrorFields(err)
	if len(fields) == 0 {
		if err != nil {
			t.Errorf("%s: %v, want no error", name, err)
		}
		return
	}
	if messageapi.ErrorCode(err) != messageapi.EINVALID || len(got) != len(fields) {
		t.Errorf("%s: fields %v (%v), want %v", name, got, err, fields)
		return
	}
	for _, f := range fields {
		if got[f] == "" {
			t.Errorf("%s: no reason for %q in %v", name, f, got)
		}
	}
}

func TestCreateMessageValidate(t *testing.T) {
	tests := []struct {
		name   string
		cmd    CreateMessage
		fields []string
	}{
		{"valid", CreateMessage{Text: "hi", UserID: "u"}, nil},
		{"valid with an id", CreateMessage{ID: "01a21b77-d171-76be-88ab-728585d7e80f", Text: "hi", UserID: "u"}, nil},
		{"nothing", CreateMessage{}, []string{"text", "user_id"}},
		{"blank text", CreateMessage{Text: " \n", UserID: "u"}, []string{"text"}},
		{"long text", CreateMessage{Text: strings.Repeat("x", messageapi.MaxTextLength+1), UserID: "u"}, []string{"text"}},
		{"bad user", CreateMessage{Text: "hi", UserID: "a b"}, []string{"user_id"}},
		{"id not a UUID", CreateMessage{ID: "x", Text: "hi", UserID: "u"}, []string{"id"}},
		{"id a UUIDv4", CreateMessage{ID: "6ba7b810-9dad-41d1-80b4-00c04fd430c8", Text: "hi", UserID: "u"}, []string{"id"}},
		{"id in braces", CreateMessage{ID: "{01a21b77-d171-76be-88ab-728585d7e80f}", Text: "hi", UserID: "u"}, nil},
		{"id between other characters", CreateMessage{ID: "x01a21b77-d171-76be-88ab-728585d7e80fy", Text: "hi", UserID: "u"}, []string{"id"}},
		{"everything wrong", CreateMessage{ID: "x", Text: "", UserID: "!"}, []string{"id", "text", "user_id"}},
	}
	for _, tt := range tests {
		_, err := tt.cmd.validate()
		wantFields(t, tt.name, err, tt.fields...)
	}
}

func TestAddReactionValidate(t *testing.T) {
	id := "01a21b77-d171-76be-88ab-728585d7e80f"
	score := func(n int) *int { return &n }
	tests := []struct {
		name   string
		cmd    AddReaction
		fields []string
		score  int
	}{
		{"valid, score defaults to 1", AddReaction{MessageID: id, Type: "like", UserID: "u"}, nil, 1},
		{"valid with a score", AddReaction{MessageID: id, Type: "+1", UserID: "u", Score: score(7)}, nil, 7},
		{"id in another spelling", AddReaction{MessageID: "{" + id + "}", Type: "like", UserID: "u"}, nil, 1},
		{"bad id", AddReaction{MessageID: "nope", Type: "like", UserID: "u"}, []string{"id"}, 0},
		{"id between other characters", AddReaction{MessageID: "x" + id + "y", Type: "like", UserID: "u"}, []string{"id"}, 0},
		{"no type", AddReaction{MessageID: id, UserID: "u"}, []string{"type"}, 0},
		{"bad type", AddReaction{MessageID: id, Type: "Like", UserID: "u"}, []string{"type"}, 0},
		{"no user", AddReaction{MessageID: id, Type: "like"}, []string{"user_id"}, 0},
		{"score 0", AddReaction{MessageID: id, Type: "like", UserID: "u", Score: score(0)}, []string{"score"}, 0},
		{"score too high", AddReaction{MessageID: id, Type: "like", UserID: "u", Score: score(messageapi.MaxScore + 1)}, []string{"score"}, 0},
	}
	for _, tt := range tests {
		messageID, s, err := tt.cmd.validate()
		wantFields(t, tt.name, err, tt.fields...)
		if err == nil && (messageID != id || s != tt.score) {
			t.Errorf("%s: message %q score %d, want %q and %d", tt.name, messageID, s, id, tt.score)
		}
	}
}

func TestRemoveReactionValidate(t *testing.T) {
	for i, tt := range []struct {
		cmd    RemoveReaction
		fields []string
	}{
		{RemoveReaction{MessageID: "01a21b77-d171-76be-88ab-728585d7e80f", Type: "like", UserID: "u"}, nil},
		{RemoveReaction{MessageID: "x", Type: "LIKE", UserID: ""}, []string{"id", "type", "user_id"}},
	} {
		_, err := tt.cmd.validate()
		wantFields(t, fmt.Sprint("case ", i), err, tt.fields...)
	}
}
