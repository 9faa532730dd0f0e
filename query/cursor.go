package query

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"messageapi"
)

// Cursors are opaque to clients: base64url of a kind byte and the sort key
// of the last item served. The kind byte keeps a reactions cursor from
// being accepted by the messages list and the reverse.
const (
	messageCursorKind  = 'm'
	reactionCursorKind = 'r'
)

var errBadCursor = messageapi.InvalidFields(map[string]string{"cursor": "is not a cursor this list returned"})

func encodeMessageCursor(id string) string {
	u := uuid.MustParse(id)
	b := append([]byte{messageCursorKind}, u[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeMessageCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != messageCursorKind {
		return "", errBadCursor
	}
	u, err := uuid.FromBytes(b[1:])
	if err != nil {
		return "", errBadCursor
	}
	return u.String(), nil
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

func decodeReactionCursor(s string) (reactionCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != reactionCursorKind {
		return reactionCursor{}, errBadCursor
	}
	ms := int64(binary.BigEndian.Uint64(b[1:9]))
	u, err := uuid.FromBytes(b[9:])
	if err != nil || ms < 0 || ms > 1<<47 {
		return reactionCursor{}, errBadCursor
	}
	return reactionCursor{CreatedAt: time.UnixMilli(ms).UTC(), ID: u.String()}, nil
}
