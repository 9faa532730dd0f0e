package feed

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/redis"
)

// DefaultMaxLen is Config.MaxLen when none is given.
const DefaultMaxLen = 100_000

// Config configures a Feed.
type Config struct {
	// MaxLen caps the feed at about this many events (MAXLEN ~): how far
	// back a client can resume. Default DefaultMaxLen.
	MaxLen int64
	// Queue configures the queue of Publish.
	Queue redis.QueueConfig
}

// Feed is the live feed of public events: a capped Redis Stream that the
// worker (reaction changes, after their fold commits) and the API (new
// messages, after their commit) append to, and that every API process
// reads and fans out to its clients. A stream id is an event's position,
// so a client that reconnects resumes after the last id it saw.
type Feed struct {
	c       *redis.Client
	appends *prometheus.CounterVec
	key     string
	maxLen  int64
	q       *redis.Queue[messageapi.Event]
}

// New returns the feed on c.
func New(c *redis.Client, cfg Config) *Feed {
	f := &Feed{c: c, appends: appendsMetric.Of(c), key: c.Key("events", ""), maxLen: cmp.Or(max(cfg.MaxLen, 0), DefaultMaxLen)}
	f.q = redis.NewQueue(cfg.Queue, f.Append, func(n int) { f.appends.WithLabelValues("dropped").Add(float64(n)) })
	return f
}

// Key returns the feed's key.
func (f *Feed) Key() string { return f.key }

// Entry fields.
const (
	feedType    = "t"
	feedMessage = "m"
	feedChannel = "c"
	feedData    = "d"
	feedAt      = "a" // Event.At in Unix microseconds
)

// Append appends events to the feed, in order, in one round trip.
func (f *Feed) Append(ctx context.Context, events []messageapi.Event) error {
	if len(events) == 0 {
		return nil
	}
	args := make([]*goredis.XAddArgs, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.Type, err)
		}
		args[i] = &goredis.XAddArgs{Stream: f.key, MaxLen: f.maxLen, Approx: true,
			Values: []any{feedType, e.Type, feedMessage, e.MessageID, feedChannel, cmp.Or(e.ChannelID, messageapi.DefaultChannel),
				feedAt, e.At.UnixMicro(), feedData, data}}
	}
	err := f.c.Do(func() error {
		_, err := f.c.Redis().Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, a := range args {
				p.XAdd(ctx, a)
			}
			return nil
		})
		return err
	})
	result := "ok"
	if err != nil {
		result = "error"
	}
	f.appends.WithLabelValues(result).Add(float64(len(events)))
	return redis.Translate(err, "append events")
}

// Publish queues an event for Append without blocking; Run appends it.
func (f *Feed) Publish(_ context.Context, e messageapi.Event) error {
	return redis.Translate(f.q.Put(e), "publish event")
}

// Run appends published events until ctx is done, then what is still
// queued, for at most drain.
func (f *Feed) Run(ctx context.Context, drain time.Duration) { f.q.Run(ctx, drain) }

// Read returns up to count events after the id after ("$" for only those
// appended from now on), waiting up to block for the first. It returns
// none and no error when none came.
func (f *Feed) Read(ctx context.Context, after string, count int, block time.Duration) ([]messageapi.FeedEntry, error) {
	var res []goredis.XStream
	err := f.c.Do(func() (err error) {
		if block <= 0 {
			block = -1 // go-redis: no BLOCK; zero would wait forever
		}
		res, err = f.c.Redis().XRead(ctx, &goredis.XReadArgs{Streams: []string{f.key, after}, Count: int64(count), Block: block}).Result()
		return err
	})
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redis.Translate(err, "read events")
	}
	var out []messageapi.FeedEntry
	for _, s := range res {
		out = append(out, feedEntries(s.Messages)...)
	}
	return out, nil
}

// tailPage is how many entries one read of Tail takes.
const tailPage = 500

// Tail returns the newest events, oldest first: at most count of them and
// about maxBytes, read a page at a time. It also returns from: the feed
// holds nothing between from and the first of them, so a reader of the
// feed that starts with them has every event after from. from is "0-0"
// when the feed never dropped an event before them, and the last id
// Redis gave when it holds none.
func (f *Feed) Tail(ctx context.Context, count, maxBytes int) (entries []messageapi.FeedEntry, from string, err error) {
	var info *goredis.XInfoStream
	var msgs []goredis.XMessage // newest first
	size, end := 0, "+"
	for first := true; ; first = false {
		n := int64(min(tailPage, count+1-len(msgs)))
		var page []goredis.XMessage
		if first {
			info, page, err = f.infoAndRange(ctx, func(p goredis.Pipeliner) { p.XRevRangeN(ctx, f.key, end, "-", n) })
		} else {
			err = f.c.Do(func() (err error) {
				page, err = f.c.Redis().XRevRangeN(ctx, f.key, end, "-", n).Result()
				return err
			})
		}
		if err != nil {
			return nil, "", redis.Translate(err, "newest events")
		}
		msgs = append(msgs, page...)
		for _, m := range page {
			size += messageSize(m)
		}
		if int64(len(page)) < n || len(msgs) > count || size > maxBytes {
			break
		}
		end = "(" + page[len(page)-1].ID
	}
	held, size := 0, 0 // the newest that fit both bounds
	for held < len(msgs) && held < count && size+messageSize(msgs[held]) <= maxBytes {
		size += messageSize(msgs[held])
		held++
	}
	trimmed := info != nil && info.EntriesAdded != info.Length
	from = "0-0"
	switch {
	case held < len(msgs): // the newest that did not fit is where the window starts
		from, msgs = msgs[held].ID, msgs[:held]
	case trimmed && len(msgs) > 0:
		from, msgs = msgs[len(msgs)-1].ID, msgs[:len(msgs)-1] // older ones were trimmed
	case trimmed:
		from = info.LastGeneratedID
	}
	slices.Reverse(msgs)
	return feedEntries(msgs), from, nil
}

// messageSize is about what an entry takes in memory.
func messageSize(m goredis.XMessage) int {
	n := 128 + len(m.ID)
	for k, v := range m.Values {
		s, _ := v.(string)
		n += len(k) + len(s)
	}
	return n
}

// Has reports whether the feed still holds the event with the id id: not
// when it was trimmed, or when Redis lost the feed. "0-0", the position
// before the first event, is always held.
func (f *Feed) Has(ctx context.Context, id string) (bool, error) {
	a, ok := messageapi.ParseFeedPosition(id)
	if !ok {
		return false, nil
	}
	if a == (messageapi.FeedPosition{}) {
		return true, nil
	}
	var n int
	err := f.c.Do(func() error {
		msgs, err := f.c.Redis().XRangeN(ctx, f.key, a.String(), a.String(), 1).Result()
		n = len(msgs)
		return err
	})
	if err != nil {
		return false, redis.Translate(err, "find event")
	}
	return n == 1, nil
}

// Since returns up to count events after the id after, oldest first, to
// resume a client. kept is false when the feed can no longer tell what
// came after after: the event after was trimmed, or Redis lost it, or it
// is not an id of this feed; the client must then start afresh.
func (f *Feed) Since(ctx context.Context, after string, count int) (entries []messageapi.FeedEntry, kept bool, err error) {
	a, ok := messageapi.ParseFeedPosition(after)
	if !ok {
		return nil, false, nil
	}
	if a == (messageapi.FeedPosition{}) {
		// A client that has seen nothing missed nothing, unless the feed
		// has trimmed events since.
		info, msgs, err := f.infoAndRange(ctx, func(p goredis.Pipeliner) { p.XRangeN(ctx, f.key, "-", "+", int64(count)) })
		if err != nil {
			return nil, false, redis.Translate(err, "events since")
		}
		if info != nil && info.EntriesAdded != info.Length { // some were trimmed
			return nil, false, nil
		}
		return feedEntries(msgs), true, nil
	}
	// The range starts at after itself: its presence proves the feed kept
	// everything since.
	var msgs []goredis.XMessage
	err = f.c.Do(func() (err error) {
		msgs, err = f.c.Redis().XRangeN(ctx, f.key, a.String(), "+", int64(count)+1).Result()
		return err
	})
	if err != nil {
		return nil, false, redis.Translate(err, "events since")
	}
	if len(msgs) == 0 || msgs[0].ID != a.String() {
		return nil, false, nil
	}
	return feedEntries(msgs[1:]), true, nil
}

// infoAndRange reads one range of the feed, which read queues, and then
// its XINFO STREAM, in one round trip: a trim between the two shows in the
// info, which errs towards telling a client to start afresh. A feed that
// does not exist has no info and no entries.
func (f *Feed) infoAndRange(ctx context.Context, read func(goredis.Pipeliner)) (*goredis.XInfoStream, []goredis.XMessage, error) {
	var info *goredis.XInfoStream
	var msgs []goredis.XMessage
	err := f.c.Do(func() error {
		cmds, err := f.c.Redis().Pipelined(ctx, func(p goredis.Pipeliner) error {
			read(p)
			p.XInfoStream(ctx, f.key)
			return nil
		})
		if err != nil && !strings.Contains(err.Error(), "no such key") {
			return err
		}
		msgs, _ = cmds[0].(*goredis.XMessageSliceCmd).Result()
		info, _ = cmds[1].(*goredis.XInfoStreamCmd).Result()
		return nil
	})
	return info, msgs, err
}

func feedEntries(msgs []goredis.XMessage) []messageapi.FeedEntry {
	out := make([]messageapi.FeedEntry, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		at, _ := strconv.ParseInt(str(feedAt), 10, 64)
		// An entry appended before channels existed has none, and is of
		// the default channel.
		out = append(out, messageapi.FeedEntry{ID: m.ID, Type: str(feedType), MessageID: str(feedMessage),
			ChannelID: cmp.Or(str(feedChannel), messageapi.DefaultChannel), At: time.UnixMicro(at), Data: []byte(str(feedData))})
	}
	return out
}
