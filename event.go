package messageapi

import (
	"cmp"
	"strconv"
	"strings"
	"time"
)

// The live feed's events of messages: a new message, an edit, a delete.
// The reaction changes are ReactionNew, ReactionUpdated and
// ReactionDeleted.
const (
	MessageNew     = "message.new"
	MessageUpdated = "message.updated"
	MessageDeleted = "message.deleted"
)

// Event is one event of the live feed: a new, edited or deleted message, or a change of a
// reaction with its message's reaction data as projected by the fold that
// took the change in. Clients order a message's events by Counts.Version
// (several changes folded together carry the same counts).
type Event struct {
	Type      string `json:"type"`
	MessageID string `json:"message_id"`
	// ChannelID is the channel of the message.
	ChannelID string `json:"channel_id"`
	// Message is the message after the event, for message.new,
	// message.updated and message.deleted.
	Message *MessageView `json:"message,omitempty"`
	// Reaction is the reaction after the change (its last state, for a
	// delete).
	Reaction *Reaction `json:"reaction,omitempty"`
	// Counts are the message's reaction data after the fold.
	Counts *EventCounts `json:"counts,omitempty"`
	// At is when the change was committed.
	At Time `json:"at"`
}

// EventCounts are a message's reaction data, as a reaction event carries
// them: what the message's view holds, without the latest reactions.
type EventCounts struct {
	ReactionCount  int64                    `json:"reaction_count"`
	ReactionCounts map[string]int64         `json:"reaction_counts"`
	ReactionScores map[string]int64         `json:"reaction_scores"`
	ReactionGroups map[string]ReactionGroup `json:"reaction_groups"`
	Version        int64                    `json:"version"`
}

// NewMessageEvent returns the event of a new message.
func NewMessageEvent(v MessageView) Event {
	return Event{Type: MessageNew, MessageID: v.ID, ChannelID: v.Channel(), Message: &v, At: v.CreatedAt}
}

// MessageChangedEvent returns the event of an edit or a delete, carrying
// the message as it is after the change.
func MessageChangedEvent(v MessageView) Event {
	e := Event{Type: MessageUpdated, MessageID: v.ID, ChannelID: v.Channel(), Message: &v, At: v.CreatedAt}
	if v.UpdatedAt != nil {
		e.At = *v.UpdatedAt
	}
	if v.Deleted() {
		e.Type = MessageDeleted
	}
	return e
}

// FoldEvents returns the events of a fold's changes, each with the counts
// and the channel of its message's view as the fold wrote it, in the
// order of the changes.
func FoldEvents(changes []ReactionChange, views []MessageView) []Event {
	counts := make(map[string]*EventCounts, len(views))
	channels := make(map[string]string, len(views))
	for _, v := range views {
		counts[v.ID] = &EventCounts{ReactionCount: v.ReactionCount, ReactionCounts: v.ReactionCounts,
			ReactionScores: v.ReactionScores, ReactionGroups: v.ReactionGroups, Version: v.Version}
		channels[v.ID] = v.Channel()
	}
	events := make([]Event, 0, len(changes))
	for _, c := range changes {
		c := c
		id := c.Reaction.MessageID
		events = append(events, Event{Type: c.Kind, MessageID: id, ChannelID: cmp.Or(channels[id], DefaultChannel),
			Reaction: &c.Reaction, Counts: counts[id], At: c.Reaction.UpdatedAt})
	}
	return events
}

// FeedEntry is one event as the feed stores it: its position in the feed
// (the text of a FeedPosition), its type, message, channel and time, and
// its JSON.
type FeedEntry struct {
	ID        string
	Type      string
	MessageID string
	ChannelID string
	At        time.Time
	Data      []byte
}

// FeedPosition is the position of an entry in the live feed: a time in
// milliseconds and a sequence within it, ordered by both. Its text,
// "ms-seq", is the id of the event a client sees, and what it resumes
// after; the zero position, "0-0", comes before every entry.
type FeedPosition struct{ Ms, Seq uint64 }

// ParseFeedPosition parses "ms-seq" (or "ms").
func ParseFeedPosition(s string) (FeedPosition, bool) {
	ms, seq, found := strings.Cut(s, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	var q uint64
	var err2 error
	if found {
		q, err2 = strconv.ParseUint(seq, 10, 64)
	}
	return FeedPosition{m, q}, err1 == nil && err2 == nil
}

func (p FeedPosition) String() string {
	return strconv.FormatUint(p.Ms, 10) + "-" + strconv.FormatUint(p.Seq, 10)
}

// After reports whether p comes after o in the feed.
func (p FeedPosition) After(o FeedPosition) bool {
	return p.Ms > o.Ms || p.Ms == o.Ms && p.Seq > o.Seq
}
