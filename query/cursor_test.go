package query

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestCursorsRoundTrip(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	for _, c := range []messageCursor{{ID: id}, {ID: id, Newer: true}} {
		got, ok := decodeMessageCursor(encodeMessageCursor(c))
		if !ok || got != c {
			t.Fatalf("message cursor round trip = %+v, %v; want %+v", got, ok, c)
		}
	}
	rc := reactionCursor{CreatedAt: time.UnixMilli(1_790_000_000_123).UTC(), ID: id}
	back, ok := decodeReactionCursor(encodeReactionCursor(rc))
	if !ok || back != rc {
		t.Fatalf("reaction cursor round trip = %+v, %v; want %+v", back, ok, rc)
	}
	// A cursor of one list is refused by the other.
	if _, ok := decodeMessageCursor(encodeReactionCursor(rc)); ok {
		t.Error("the messages list accepted a reactions cursor")
	}
	if _, ok := decodeReactionCursor(encodeMessageCursor(messageCursor{ID: id})); ok {
		t.Error("the reactions list accepted a messages cursor")
	}
}

// FuzzCursors: no string makes decoding panic, and whatever decodes
// encodes back to a cursor that decodes to the same position.
func FuzzCursors(f *testing.F) {
	for _, seed := range []string{
		"", "bQGiG3fRcXa-iKtyhYXX6A8", "cgAAAaIbd9H6AaIbd9H6fQ-jHQdMuCVMRw", "!!!", "bQ", "cg",
		"////////////////////////////////////", "bQGiG3fRcXa-iKtyhYXX6A8=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, ok := decodeMessageCursor(s); ok {
			if again, ok := decodeMessageCursor(encodeMessageCursor(c)); !ok || again != c {
				t.Fatalf("message cursor %q: %+v does not round-trip (%+v, %v)", s, c, again, ok)
			}
		}
		if c, ok := decodeReactionCursor(s); ok {
			if again, ok := decodeReactionCursor(encodeReactionCursor(c)); !ok || again != c {
				t.Fatalf("reaction cursor %q: %+v does not round-trip (%+v, %v)", s, c, again, ok)
			}
		}
	})
}
