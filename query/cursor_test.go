package query

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestCursorsRoundTrip(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	got, err := decodeMessageCursor(encodeMessageCursor(id))
	if err != nil || got != id {
		t.Fatalf("message cursor round trip = %q, %v; want %q", got, err, id)
	}
	rc := reactionCursor{CreatedAt: time.UnixMilli(1_790_000_000_123).UTC(), ID: id}
	back, err := decodeReactionCursor(encodeReactionCursor(rc))
	if err != nil || back != rc {
		t.Fatalf("reaction cursor round trip = %+v, %v; want %+v", back, err, rc)
	}
	// A cursor of one list is refused by the other.
	if _, err := decodeMessageCursor(encodeReactionCursor(rc)); err == nil {
		t.Error("the messages list accepted a reactions cursor")
	}
	if _, err := decodeReactionCursor(encodeMessageCursor(id)); err == nil {
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
		if id, err := decodeMessageCursor(s); err == nil {
			if again, err := decodeMessageCursor(encodeMessageCursor(id)); err != nil || again != id {
				t.Fatalf("message cursor %q: %q does not round-trip (%q, %v)", s, id, again, err)
			}
		}
		if c, err := decodeReactionCursor(s); err == nil {
			if again, err := decodeReactionCursor(encodeReactionCursor(c)); err != nil || again != c {
				t.Fatalf("reaction cursor %q: %+v does not round-trip (%+v, %v)", s, c, again, err)
			}
		}
	})
}
