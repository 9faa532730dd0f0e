package stream

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/redis"
)

// Defaults of Config.
const (
	DefaultMaxLen     = 1_000_000
	DefaultPartitions = 1
	MaxPartitions     = 1024
)

// Config configures a Stream.
type Config struct {
	// MaxLen trims the stream to about this many entries on every append
	// (MAXLEN ~), each partition to its share (at least 1000). Trimming can drop an entry no worker has read;
	// the projection's sweeper folds that change from PostgreSQL, so
	// nothing is lost. Default DefaultMaxLen.
	MaxLen int64
	// Partitions splits the stream by channel, and the default channel by
	// message: a change goes to partition
	// PartitionOf(PartitionKey(channel, message), Partitions). Each partition is a stream key of
	// its own hash tag, so on a Redis Cluster the partitions spread over
	// the masters. Every process of a deployment must agree on it.
	// Default DefaultPartitions.
	Partitions int
}

// Stream is the Redis Stream of reaction changes, split into partitions,
// each with its consumer group and a dead-letter stream beside it.
type Stream struct {
	c          *redis.Client
	appends    *prometheus.CounterVec
	partitions []partition
	maxLen     int64
}

// partition is one stream key and its dead letters, under one hash tag.
type partition struct {
	key, dead string
}

// New returns the reaction stream on c.
func New(c *redis.Client, cfg Config) *Stream {
	cfg.MaxLen = cmp.Or(max(cfg.MaxLen, 0), DefaultMaxLen)
	n := min(cmp.Or(max(cfg.Partitions, 0), DefaultPartitions), MaxPartitions)
	// MaxLen bounds the whole stream: each partition keeps its share.
	s := &Stream{c: c, appends: appendsMetric.Of(c), maxLen: max(cfg.MaxLen/int64(n), 1000), partitions: make([]partition, n)}
	for i := range s.partitions {
		group := "reactions:" + strconv.Itoa(i)
		s.partitions[i] = partition{key: c.Key(group, ""), dead: c.Key(group, ":dead")}
	}
	return s
}

// Partitions returns how many partitions the stream has.
func (s *Stream) Partitions() int { return len(s.partitions) }

// Key returns the key of a partition.
func (s *Stream) Key(partition int) string { return s.partitions[partition].key }

// DeadLetterKey returns the key of a partition's dead-letter stream.
func (s *Stream) DeadLetterKey(partition int) string { return s.partitions[partition].dead }

// PartitionOf returns the partition among n of the changes with the
// partition key key (see PartitionKey).
func PartitionOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(messageapi.Hash32(key) % uint32(n))
}

// PartitionKey returns what chooses the partition of a change of a
// reaction to a message of a channel: the channel, so that all of a
// channel's changes go to one partition, where one worker reads them in
// order and folds a hot channel's messages in shared batches. The default
// channel, which holds every message of the clients of /messages, is
// spread by message instead: as one partition it would put all of their
// traffic on one worker. A change whose channel is unknown goes by its
// message.
func PartitionKey(channelID, messageID string) string {
	if channelID == "" || channelID == messageapi.DefaultChannel {
		return messageID
	}
	return "channel:" + channelID
}

// Event fields in a stream entry.
const (
	fieldReaction = "reaction_id"
	fieldMessage  = "message_id"
	fieldVersion  = "version"
	fieldAt       = "changed_at_ms"
)

// Publish appends e to the stream.
func (s *Stream) Publish(ctx context.Context, e messageapi.ReactionChanged) error {
	return redis.Translate(s.append(ctx, []messageapi.ReactionChanged{e}), "publish")
}

// append appends events in one pipelined round trip and counts them.
func (s *Stream) append(ctx context.Context, events []messageapi.ReactionChanged) error {
	err := s.c.Do(func() error {
		_, err := s.c.Redis().Pipelined(ctx, func(pipe goredis.Pipeliner) error {
			for _, e := range events {
				pipe.XAdd(ctx, s.addArgs(e))
			}
			return nil
		})
		return err
	})
	s.countAppends(len(events), err)
	return err
}

// countDropped counts events that never reached the stream.
func (s *Stream) countDropped(n int) {
	s.appends.WithLabelValues("dropped").Add(float64(n))
}

func (s *Stream) addArgs(e messageapi.ReactionChanged) *goredis.XAddArgs {
	return &goredis.XAddArgs{
		Stream: s.partitions[PartitionOf(PartitionKey(e.ChannelID, e.MessageID), len(s.partitions))].key,
		MaxLen: s.maxLen,
		Approx: true,
		Values: []any{
			fieldReaction, e.ReactionID,
			fieldMessage, e.MessageID,
			fieldVersion, e.Version,
			fieldAt, e.ChangedAt.UnixMilli(),
		},
	}
}

func (s *Stream) countAppends(n int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.appends.WithLabelValues(result).Add(float64(n))
}

// Consumer is one named consumer of the consumer group of one partition.
type Consumer struct {
	s     *Stream
	key   string // the partition's stream
	dead  string // its dead letters
	group string
	name  string
}

// Consumer returns the consumer name of group on a partition.
func (s *Stream) Consumer(partition int, group, name string) *Consumer {
	p := s.partitions[partition]
	return &Consumer{s: s, key: p.key, dead: p.dead, group: group, name: name}
}

// EnsureGroup creates the consumer group, and the stream with it, unless
// it exists. A new group starts at the beginning of the stream: folding is
// idempotent, so reading old entries again costs work, never correctness.
func (c *Consumer) EnsureGroup(ctx context.Context) error {
	s := c.s
	err := s.c.Do(func() error { return s.c.Redis().XGroupCreateMkStream(ctx, c.key, c.group, "0").Err() })
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return redis.Translate(err, "create group")
	}
	return nil
}

// Read returns up to count new entries, blocking up to block for the
// first. It returns no entries and no error when none arrived. A group
// lost with a Redis restart is recreated.
func (c *Consumer) Read(ctx context.Context, count int, block time.Duration) ([]messageapi.StreamEntry, error) {
	return c.read(ctx, ">", count, block)
}

// ReadPending returns up to count entries delivered to this consumer and
// not yet acknowledged: after a restart under the same consumer name, a
// worker finishes what it had been given before it takes anything new.
func (c *Consumer) ReadPending(ctx context.Context, count int) ([]messageapi.StreamEntry, error) {
	return c.read(ctx, "0", count, -1)
}

func (c *Consumer) read(ctx context.Context, from string, count int, block time.Duration) ([]messageapi.StreamEntry, error) {
	s := c.s
	args := &goredis.XReadGroupArgs{
		Group: c.group, Consumer: c.name, Streams: []string{c.key, from}, Count: int64(count), Block: block,
	}
	var res []goredis.XStream
	readGroup := func() (err error) {
		res, err = s.c.Redis().XReadGroup(ctx, args).Result()
		return err
	}
	err := s.c.Do(readGroup)
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		if err := c.EnsureGroup(ctx); err != nil {
			return nil, err
		}
		err = s.c.Do(readGroup)
	}
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redis.Translate(err, "read")
	}
	var entries []messageapi.StreamEntry
	for _, st := range res {
		for _, m := range st.Messages {
			entries = append(entries, decodeEntry(m))
		}
	}
	return entries, nil
}

func decodeEntry(m goredis.XMessage) messageapi.StreamEntry {
	e := messageapi.StreamEntry{ID: m.ID}
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	version, verr := strconv.ParseInt(str(fieldVersion), 10, 64)
	at, aerr := strconv.ParseInt(str(fieldAt), 10, 64)
	switch {
	case len(m.Values) == 0:
		e.Invalid = "deleted from the stream" // trimmed while pending
	case !isUUID(str(fieldReaction)) || !isUUID(str(fieldMessage)):
		e.Invalid = "reaction_id or message_id is not a UUID"
	case verr != nil || aerr != nil:
		e.Invalid = "version or changed_at_ms is not an integer"
	default:
		e.Event = messageapi.ReactionChanged{
			ReactionID: str(fieldReaction),
			MessageID:  str(fieldMessage),
			Version:    version,
			ChangedAt:  time.UnixMilli(at),
		}
	}
	return e
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// Claim moves to this consumer up to count entries that other consumers
// have held unacknowledged for at least minIdle (a worker that died), and
// returns them with their delivery counts.
func (c *Consumer) Claim(ctx context.Context, minIdle time.Duration, count int) ([]messageapi.StreamEntry, error) {
	s := c.s
	var msgs []goredis.XMessage
	err := s.c.Do(func() (err error) {
		msgs, _, err = s.c.Redis().XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream: c.key, Group: c.group, Consumer: c.name, MinIdle: minIdle, Start: "0", Count: int64(count),
		}).Result()
		return err
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, nil // nothing pending in a group that does not exist yet
		}
		return nil, redis.Translate(err, "claim")
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	// Each claimed entry's delivery count, looked up by its own id: a range
	// query could return other pending entries in between instead.
	var counts []*goredis.XPendingExtCmd
	err = s.c.Do(func() error {
		_, err := s.c.Redis().Pipelined(ctx, func(p goredis.Pipeliner) error {
			counts = counts[:0]
			for _, m := range msgs {
				counts = append(counts, p.XPendingExt(ctx, &goredis.XPendingExtArgs{
					Stream: c.key, Group: c.group, Start: m.ID, End: m.ID, Count: 1,
				}))
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, redis.Translate(err, "claim: pending")
	}
	deliveries := make(map[string]int64, len(msgs))
	for _, cmd := range counts {
		for _, p := range cmd.Val() {
			deliveries[p.ID] = p.RetryCount
		}
	}
	entries := make([]messageapi.StreamEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = decodeEntry(m)
		entries[i].Deliveries = deliveries[m.ID]
	}
	return entries, nil
}

// Ack acknowledges entries; call it only after their effect has committed.
func (c *Consumer) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	s := c.s
	return redis.Translate(s.c.Do(func() error { return s.c.Redis().XAck(ctx, c.key, c.group, ids...).Err() }), "ack")
}

// DeadLetter copies entries to the dead-letter stream with the reason,
// then acknowledges them. The acknowledgement waits for the copy: a MULTI
// would not help, since Redis does not undo the rest of a transaction when
// one command fails. A crash in between leaves an entry in both streams,
// which is harmless: folding is idempotent.
func (c *Consumer) DeadLetter(ctx context.Context, entries []messageapi.StreamEntry, reason string) error {
	if len(entries) == 0 {
		return nil
	}
	s := c.s
	ids := make([]string, len(entries))
	err := s.c.Do(func() error {
		cmds, err := s.c.Redis().Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, e := range entries {
				ids[i] = e.ID
				p.XAdd(ctx, &goredis.XAddArgs{
					Stream: c.dead, MaxLen: s.maxLen, Approx: true,
					Values: []any{
						"entry_id", e.ID, "reason", reason, "invalid", e.Invalid,
						fieldReaction, e.Event.ReactionID, fieldMessage, e.Event.MessageID,
						fieldVersion, e.Event.Version, "deliveries", e.Deliveries,
					},
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				return cmd.Err()
			}
		}
		return nil
	})
	if err == nil {
		err = s.c.Do(func() error { return s.c.Redis().XAck(ctx, c.key, c.group, ids...).Err() })
	}
	return redis.Translate(err, "dead-letter")
}

// Backlog returns what the consumer's group has still to do.
func (c *Consumer) Backlog(ctx context.Context) (messageapi.StreamBacklog, error) {
	s := c.s
	var groups []goredis.XInfoGroup
	err := s.c.Do(func() (err error) {
		groups, err = s.c.Redis().XInfoGroups(ctx, c.key).Result()
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return messageapi.StreamBacklog{}, nil
		}
		return messageapi.StreamBacklog{}, redis.Translate(err, "backlog")
	}
	for _, g := range groups {
		if g.Name == c.group {
			return messageapi.StreamBacklog{Pending: g.Pending, Unread: g.Lag}, nil
		}
	}
	return messageapi.StreamBacklog{}, nil
}

// RemoveIdleConsumers deletes consumers of the group that have nothing
// pending and have been idle longer than idle, so the group does not
// collect one consumer per worker restart.
func (c *Consumer) RemoveIdleConsumers(ctx context.Context, idle time.Duration) (int, error) {
	s := c.s
	var consumers []goredis.XInfoConsumer
	err := s.c.Do(func() (err error) {
		consumers, err = s.c.Redis().XInfoConsumers(ctx, c.key, c.group).Result()
		return err
	})
	if err != nil {
		return 0, redis.Translate(err, "list consumers")
	}
	removed := 0
	for _, other := range consumers {
		if other.Pending == 0 && other.Idle > idle {
			err := s.c.Do(func() error { return s.c.Redis().XGroupDelConsumer(ctx, c.key, c.group, other.Name).Err() })
			if err != nil {
				return removed, redis.Translate(err, "remove consumer")
			}
			removed++
		}
	}
	return removed, nil
}
