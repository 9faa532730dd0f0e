package messageapi_test

import (
	"testing"
	"time"

	"messageapi"
)

func TestFoldEventsCarryTheirMessagesCounts(t *testing.T) {
	at := messageapi.NewTime(time.UnixMilli(1_790_000_000_000))
	changes := []messageapi.ReactionChange{
		{Kind: messageapi.ReactionNew, Reaction: messageapi.Reaction{ID: "r1", MessageID: "m1", UpdatedAt: at}},
		{Kind: messageapi.ReactionDeleted, Reaction: messageapi.Reaction{ID: "r2", MessageID: "m2", UpdatedAt: at}},
		{Kind: messageapi.ReactionUpdated, Reaction: messageapi.Reaction{ID: "r3", MessageID: "m1", UpdatedAt: at}},
	}
	views := []messageapi.MessageView{
		{Message: messageapi.Message{ID: "m1", ChannelID: "general"}, ReactionCount: 2, ReactionCounts: map[string]int64{"like": 2}, Version: 7},
		{Message: messageapi.Message{ID: "m2"}, ReactionCount: 0, ReactionCounts: map[string]int64{}, Version: 3},
	}
	events := messageapi.FoldEvents(changes, views)
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i, e := range events {
		c := changes[i]
		if e.Type != c.Kind || e.MessageID != c.Reaction.MessageID || e.Reaction.ID != c.Reaction.ID || !e.At.Equal(at.Time) {
			t.Errorf("event %d = %+v, want change %+v", i, e, c)
		}
	}
	if events[0].Counts.Version != 7 || events[2].Counts.Version != 7 || events[0].Counts.ReactionCounts["like"] != 2 {
		t.Errorf("m1's events carry %+v and %+v", events[0].Counts, events[2].Counts)
	}
	if events[1].Counts.Version != 3 || events[1].Counts.ReactionCount != 0 {
		t.Errorf("m2's event carries %+v", events[1].Counts)
	}
	// A view read before channels existed is of the default channel.
	if events[0].ChannelID != "general" || events[2].ChannelID != "general" || events[1].ChannelID != messageapi.DefaultChannel {
		t.Errorf("channels of the events: %q %q %q, want general, default, general", events[0].ChannelID, events[1].ChannelID, events[2].ChannelID)
	}
	if e := messageapi.NewMessageEvent(views[0]); e.Type != messageapi.MessageNew || e.Message.ID != "m1" || e.ChannelID != "general" || e.Counts != nil {
		t.Errorf("NewMessageEvent = %+v", e)
	}
}
