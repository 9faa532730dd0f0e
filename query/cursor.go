package query

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Cursors are opaque to clients: base64url of a kind byte and the sort key
// of the last item served. The kind byte keeps a reactions cursor from
// being accepted by the messages list and the reverse.
const (
	messageCursorKind  = 'm' // older than the message
	newerCursorKind    = 'n' // newer than the message
	reactionCursorKind = 'r'
)

// messageCursor is a position in the list of messages: the messages older
// than ID, or, when Newer is set, the messages newer than ID.
type messageCursor struct {
	ID    string
	Newer bool
}

func encodeMessageCursor(c messageCursor) string {
	u := uuid.MustParse(c.ID)
	kind := byte(messageCursorKind)
	if c.Newer {
		kind = newerCursorKind
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, u[:]...))
}

// decodeMessageCursor returns the position a messages cursor holds, and
// whether s is one.
func decodeMessageCursor(s string) (messageCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || (b[0] != messageCursorKind && b[0] != newerCursorKind) {
		return messageCursor{}, false
	}
	u, err := uuid.FromBytes(b[1:])
	if err != nil {
		return messageCursor{}, false
	}
	return messageCursor{ID: u.String(), Newer: b[0] == newerCursorKind}, true
}

// reactionCursor is the position after a reaction in newest-first order.
type reactionCursor struct {
	CreatedAt time.Time
	ID        string
}

func encodeReactionCursor(c reactionCursor) string {
	u := uuid.MustParse(c.ID)
	b := make([]byte, 1, 25)
	b[0] = reactionCursorKind
	b = binary.BigEndian.AppendUint64(b, uint64(c.CreatedAt.UnixMilli()))
	b = append(b, u[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeReactionCursor returns the position a reactions cursor holds, and
// whether s is one.
func decodeReactionCursor(s string) (reactionCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != reactionCursorKind {
		return reactionCursor{}, false
	}
	ms := int64(binary.BigEndian.Uint64(b[1:9]))
	u, err := uuid.FromBytes(b[9:])
	if err != nil || ms < 0 || ms > 1<<47 {
		return reactionCursor{}, false
	}
	return reactionCursor{CreatedAt: time.UnixMilli(ms).UTC(), ID: u.String()}, true
}
