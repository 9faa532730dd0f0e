package messageapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits shared by validation, storage and the HTTP contract.
const (
	// MaxTextLength is the maximum length of a message text in characters.
	MaxTextLength = 5000
	// MaxUserIDLength is the maximum length of a user id.
	MaxUserIDLength = 128
	// MaxReactionTypeLength is the maximum length of a reaction type.
	MaxReactionTypeLength = 30
	// MaxChannelIDLength is the maximum length of a channel id.
	MaxChannelIDLength = 64
	// DefaultChannel is the channel of the routes that name none
	// (/messages).
	DefaultChannel = "default"
	// MinScore and MaxScore bound a reaction's score (a user's claps).
	MinScore = 1
	MaxScore = 1_000_000
	// DefaultScore is the score of a reaction posted without one.
	DefaultScore = 1
	// DefaultPageSize is the number of items in a page when no limit is given.
	DefaultPageSize = 10
	// MaxPageSize is the largest limit a list request may ask for.
	MaxPageSize = 100
	// MaxPageOffset bounds page-number pagination: page N skips (N-1)*limit
	// messages, and skipping is linear work. Deeper reads use the cursor.
	MaxPageOffset = 10_000
	// InlineReactions is how many of the latest reactions a message carries.
	InlineReactions = 10
	// DefaultMaxReactionTypes caps the distinct reaction types on one
	// message, as common chat apps do: every reader of a page pays for each
	// type of each message on it.
	DefaultMaxReactionTypes = 25
)

// Message is a chat message as written by a user, in a channel. UpdatedAt is set once
// the message was edited (or deleted). A deleted message is a tombstone:
// DeletedAt is set, Text is empty and it has no reactions, but it keeps its
// id and so its place in every page.
type Message struct {
	ID        string `json:"id"`
	ChannelID string `json:"channel_id"`
	Text      string `json:"text"`
	UserID    string `json:"user_id"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt *Time  `json:"updated_at,omitempty"`
	DeletedAt *Time  `json:"deleted_at,omitempty"`
}

// Deleted reports whether m is a tombstone.
func (m Message) Deleted() bool { return m.DeletedAt != nil }

// Channel returns the channel of m: a message read before channels
// existed has none, and is of the default channel.
func (m Message) Channel() string {
	if m.ChannelID == "" {
		return DefaultChannel
	}
	return m.ChannelID
}

// MessageChange is an edit or a delete of a message by UserID, at At.
// Text is the new text of an edit, and empty for a delete. AnyAuthor lets
// the change apply whoever wrote the message (a server's token);
// otherwise UserID must be its author.
type MessageChange struct {
	ID        string
	UserID    string
	Text      string
	At        time.Time
	AnyAuthor bool
}

// Reaction is one user's reaction of one type to a message. There is at most
// one per (message, user, type); posting it again sets its score.
type Reaction struct {
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	UserID    string `json:"user_id"`
	Type      string `json:"type"`
	Score     int    `json:"score"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
}

// MessageView is a message together with its projected reaction data, as the
// read side serves it. Version rises by one with every projection update, so
// a cache can refuse to replace a newer view with an older one.
type MessageView struct {
	Message
	ReactionCount  int64                    `json:"reaction_count"`
	ReactionCounts map[string]int64         `json:"reaction_counts"`
	ReactionScores map[string]int64         `json:"reaction_scores"`
	ReactionGroups map[string]ReactionGroup `json:"reaction_groups"`
	Reactions      []Reaction               `json:"reactions"`
	// OwnReactions are the live reactions of the user a read was made for,
	// when it names one; absent otherwise.
	OwnReactions *[]Reaction `json:"own_reactions,omitempty"`
	Version      int64       `json:"-"`
}

// ReactionGroup sums up the live reactions of one type on a message: how
// many there are, the sum of their scores, and when the first and the
// latest of them were posted (their created_at; a revived reaction counts
// from its revival).
type ReactionGroup struct {
	Count           int64 `json:"count"`
	SumScores       int64 `json:"sum_scores"`
	FirstReactionAt Time  `json:"first_reaction_at"`
	LastReactionAt  Time  `json:"last_reaction_at"`
}

// NewMessageView returns the view of a message that has no reactions yet.
func NewMessageView(m Message) MessageView {
	return MessageView{
		Message:        m,
		ReactionCounts: map[string]int64{},
		ReactionScores: map[string]int64{},
		ReactionGroups: map[string]ReactionGroup{},
		Reactions:      []Reaction{},
	}
}

// Apply folds the deltas of this view's message into its counts. A type
// whose count drops to zero disappears from the maps, so a view always
// equals the aggregate over the reactions it has counted.
// The times of a group are not deltas: whoever applies the deltas re-reads
// them (SetGroupTimes), since deleting the first reaction of a type moves
// its first_reaction_at to a reaction no delta names.
func (v *MessageView) Apply(deltas []ReactionDelta) {
	if v.ReactionGroups == nil {
		v.ReactionGroups = map[string]ReactionGroup{}
	}
	for _, d := range deltas {
		if d.MessageID != v.ID {
			continue
		}
		v.ReactionCount += d.Count
		g := v.ReactionGroups[d.Type]
		g.Count += d.Count
		g.SumScores += d.Score
		if g.Count == 0 {
			delete(v.ReactionGroups, d.Type)
		} else {
			v.ReactionGroups[d.Type] = g
		}
	}
	v.deriveCounts()
}

// SetGroupTimes sets when the first and the latest live reaction of a type
// were posted, if the view has a group for the type.
func (v *MessageView) SetGroupTimes(reactionType string, first, last time.Time) {
	if g, ok := v.ReactionGroups[reactionType]; ok {
		g.FirstReactionAt, g.LastReactionAt = NewTime(first), NewTime(last)
		v.ReactionGroups[reactionType] = g
	}
}

// deriveCounts sets the counts and scores per type from the groups, which
// hold the same numbers: clients that predate the groups read these maps.
func (v *MessageView) deriveCounts() {
	v.ReactionCounts = make(map[string]int64, len(v.ReactionGroups))
	v.ReactionScores = make(map[string]int64, len(v.ReactionGroups))
	for t, g := range v.ReactionGroups {
		v.ReactionCounts[t], v.ReactionScores[t] = g.Count, g.SumScores
	}
}

// SetGroups replaces the view's groups, and the counts derived from them.
func (v *MessageView) SetGroups(groups map[string]ReactionGroup) {
	if groups == nil {
		groups = map[string]ReactionGroup{}
	}
	v.ReactionGroups = groups
	v.deriveCounts()
}

// ResetCounts empties the view's counts, for a rebuild from all its rows.
func (v *MessageView) ResetCounts() {
	v.ReactionCount = 0
	v.SetGroups(nil)
}

// CountsEqual reports whether two views hold the same counts and scores.
func (v MessageView) CountsEqual(o MessageView) bool {
	return v.ReactionCount == o.ReactionCount &&
		maps.Equal(v.ReactionCounts, o.ReactionCounts) && maps.Equal(v.ReactionScores, o.ReactionScores)
}

// ReactionChanged is the stream event that announces a committed change of
// one reaction. It is a notification, not the change itself: the projection
// reads the reaction's current state, so a lost, repeated or reordered event
// cannot make the read model wrong.
type ReactionChanged struct {
	ReactionID string
	MessageID  string
	// ChannelID is the message's channel, which chooses the stream
	// partition; "" when it is not known, and then the message does.
	ChannelID string
	Version   int64
	// ChangedAt is when the change was committed; it measures projection lag.
	ChangedAt time.Time
}

// What a valid value of each field is, in the words of validation errors.
// Every use case names a bad field with one of these, so a rule reads the
// same wherever it is broken.
var (
	RequiredRule     = "is required"
	TextRule         = fmt.Sprintf("must be 1 to %d characters, not only white space or invisible characters, without NUL", MaxTextLength)
	UserIDRule       = fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ . @ -", MaxUserIDLength)
	ReactionTypeRule = fmt.Sprintf("must be 1 to %d characters of a-z 0-9 _ + -", MaxReactionTypeLength)
	ChannelIDRule    = fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 _ -", MaxChannelIDLength)
	ScoreRule        = fmt.Sprintf("must be an integer from %d to %d", MinScore, MaxScore)
	LimitRule        = fmt.Sprintf("must be an integer from 1 to %d", MaxPageSize)
	PageRule         = "must be an integer of at least 1"
	PageDepthRule    = fmt.Sprintf("may skip at most %d messages; use cursor to read further", MaxPageOffset)
	CursorRule       = "is not a cursor this list returned"
	UUIDRule         = "must be a UUID"
	UUIDv7Rule       = "must be a UUIDv7"
	ClientIDRule     = "must be a UUIDv7 made at most " + MaxClientIDAge.String() + " before and " + MaxClientIDLead.String() + " after the server clock"
	// The rules of GET /events.
	EventFiltersRule  = fmt.Sprintf("may be given at most %d times", MaxEventFilters)
	FeedPositionRule  = "must be the id of an event this stream sent"
	EventDurationRule = "must be a duration from " + MinEventDuration.String() + " to " + MaxEventDuration.String() + ", like 30s"
)

// Bounds of a live-event stream: the messages it may follow, and how long
// a client may ask it to last.
const (
	MaxEventFilters  = 100
	MinEventDuration = time.Second
	MaxEventDuration = time.Hour
)

// ValidText reports whether s is acceptable as a message text: 1 to
// MaxTextLength characters, valid UTF-8, not only white space or invisible
// characters, and free of NUL, which PostgreSQL cannot store in text.
func ValidText(s string) bool {
	if s == "" || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	if utf8.RuneCountInString(s) > MaxTextLength {
		return false
	}
	return strings.TrimFunc(s, blank) != ""
}

// blank reports whether r shows nothing on its own: white space, control
// and format characters (zero-width space, joiners, byte order mark),
// combining marks (they only decorate a character before them), and the
// letters and symbols that render as blanks (Hangul fillers, the blank
// Braille pattern).
func blank(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800':
		return true
	}
	return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.M)
}

// ValidUserID reports whether s is a user id: 1 to MaxUserIDLength of
// [A-Za-z0-9_.@-].
func ValidUserID(s string) bool {
	if len(s) == 0 || len(s) > MaxUserIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidChannelID reports whether s is a channel id: 1 to
// MaxChannelIDLength of [A-Za-z0-9_-].
func ValidChannelID(s string) bool {
	if len(s) == 0 || len(s) > MaxChannelIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidReactionType reports whether s is a reaction type: 1 to
// MaxReactionTypeLength of [a-z0-9_+-].
func ValidReactionType(s string) bool {
	if len(s) == 0 || len(s) > MaxReactionTypeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidUUIDBraces reports whether s, when it has the 38 characters of a
// braced UUID, has the braces. A UUID may be written in any of its
// spellings, one of them "{" + UUID + "}"; but uuid.Parse drops the first
// and last of 38 characters without looking at them, so "x" + UUID + "y"
// would pass for it. Every parse of a client's id checks this too.
func ValidUUIDBraces(s string) bool {
	return len(s) != 38 || s[0] == '{' && s[37] == '}'
}

// How far the time inside a client-supplied message id may be from the
// server clock. The id orders the message in every page. An id from the
// past files it among older messages, which a client retrying for minutes
// needs; an id from the future would pin it above every message posted
// until then, so it may lead the clock only by a small skew.
const (
	MaxClientIDAge  = 5 * time.Minute
	MaxClientIDLead = 5 * time.Second
)

// MessageRange selects up to Limit messages of one channel (ChannelID;
// empty is DefaultChannel), always listed newest first:
//   - with BeforeID, the newest of those older than it (a cursor);
//   - with AtOrBeforeID, that message and the newest of those older;
//   - with AfterID, the oldest of those newer than it (a newer-direction
//     cursor: the next messages toward the present);
//   - otherwise the newest from Offset (a page number).
type MessageRange struct {
	ChannelID    string
	BeforeID     string
	AtOrBeforeID string
	AfterID      string
	Offset       int
	Limit        int
}

// Latest reports whether r is a range from the newest message down: the
// only kind a cache of the latest messages can hold by rank.
func (r MessageRange) Latest() bool {
	return r.BeforeID == "" && r.AtOrBeforeID == "" && r.AfterID == ""
}

// Channel returns the channel of r.
func (r MessageRange) Channel() string {
	if r.ChannelID == "" {
		return DefaultChannel
	}
	return r.ChannelID
}

// LoadViews reads the views of a range of messages from the read model,
// encoded. A cache calls it for what it does not hold.
type LoadViews func(ctx context.Context, r MessageRange) ([]EncodedView, error)

// ReactionRange selects a message's live reactions, newest first (by
// created_at, then id), optionally of one type or one user, after the
// position (BeforeCreatedAt, BeforeID) when BeforeID is set.
type ReactionRange struct {
	MessageID       string
	Type            string
	UserID          string
	BeforeCreatedAt time.Time
	BeforeID        string
	Limit           int
}

// StreamEntry is one delivery of a ReactionChanged event from the stream.
type StreamEntry struct {
	// ID is the stream entry id, used to acknowledge it.
	ID    string
	Event ReactionChanged
	// Deliveries is how often the entry has been delivered, where known
	// (entries claimed from another consumer); 0 otherwise.
	Deliveries int64
	// Invalid, when not empty, says why the entry could not be decoded.
	Invalid string
}

// StreamBacklog is what a consumer group has still to do: entries
// delivered and not acknowledged (Pending), and entries not yet read
// (Unread; -1 when Redis cannot tell).
type StreamBacklog struct {
	Pending int64
	Unread  int64
}

// EncodedView is a message view already encoded as the API writes it. The
// cache holds views in this form, so a cached page is served as stored
// bytes instead of being decoded and encoded again on every read.
type EncodedView struct {
	ID      string
	Version int64
	JSON    []byte
}

// WithOwnReactions returns v with the user's own reactions added to its
// JSON, spliced in rather than encoded again: v.JSON is an object this
// service encoded, so its last byte closes it.
func (v EncodedView) WithOwnReactions(own []Reaction) (EncodedView, error) {
	if own == nil {
		own = []Reaction{}
	}
	b, err := json.Marshal(own)
	if err != nil {
		return EncodedView{}, fmt.Errorf("encode own reactions of %s: %w", v.ID, err)
	}
	const field = `,"own_reactions":`
	n := len(v.JSON)
	if n < 2 || v.JSON[n-1] != '}' {
		return EncodedView{}, fmt.Errorf("view %s is not a JSON object", v.ID)
	}
	out := make([]byte, 0, n+len(field)+len(b))
	out = append(out, v.JSON[:n-1]...)
	if n > 2 { // not {}
		out = append(out, field...)
	} else {
		out = append(out, field[1:]...)
	}
	out = append(out, b...)
	v.JSON = append(out, '}')
	return v, nil
}

// Encode returns v encoded as the API writes it.
func (v MessageView) Encode() (EncodedView, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return EncodedView{}, fmt.Errorf("encode view %s: %w", v.ID, err)
	}
	return EncodedView{ID: v.ID, Version: v.Version, JSON: b}, nil
}
