package stream

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi/redis"
)

// Leases gives each stream partition one owning worker at a time: a lease,
// a key beside the partition's stream that holds the owner's name and
// expires unless the owner renews it. A worker that dies or freezes loses
// its leases within their time to live, and its peers take them over.
//
// The leases carry no fencing token because the projection needs none: a
// fold is exact whoever runs it and however many run at once (it applies
// the difference between a row's state and what was last folded, under
// the row's lock). Owning a partition only keeps the changes of one
// message in one worker's batches, where they coalesce, instead of two
// workers contending for its view.
type Leases struct {
	s    *Stream
	name string
	live string // the registry of live workers: name -> time last seen (ms)
}

// Leases returns the partitions' leases as the worker name holds and
// seeks them.
func (s *Stream) Leases(name string) *Leases {
	return &Leases{s: s, name: name, live: s.c.Key("workers", "")}
}

// leaseKey is the key of a partition's lease. Its suffix stays ":owner",
// so that workers of older builds, during a rolling upgrade, contend for
// the same keys.
func (o *Leases) leaseKey(partition int) string { return o.s.partitions[partition].key + ":owner" }

// Heartbeat records that this worker is alive, forgets workers not seen
// for ttl, and returns how many are alive, itself included.
func (o *Leases) Heartbeat(ctx context.Context, ttl time.Duration) (int, error) {
	now := time.Now()
	var alive *goredis.IntCmd
	err := o.s.c.Do(func() error {
		_, err := o.s.c.Redis().TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZAdd(ctx, o.live, goredis.Z{Score: float64(now.UnixMilli()), Member: o.name})
			p.ZRemRangeByScore(ctx, o.live, "-inf", "("+strconv.FormatInt(now.Add(-ttl).UnixMilli(), 10))
			alive = p.ZCard(ctx, o.live)
			p.PExpire(ctx, o.live, 10*ttl)
			return nil
		})
		return err
	})
	if err != nil {
		return 0, redis.Translate(err, "heartbeat")
	}
	return int(alive.Val()), nil
}

// Leave removes this worker from the registry, so peers rebalance at once.
func (o *Leases) Leave(ctx context.Context) error {
	return redis.Translate(o.s.c.Do(func() error { return o.s.c.Redis().ZRem(ctx, o.live, o.name).Err() }), "leave")
}

// Acquire takes the lease of a partition for ttl if nobody holds it, and
// reports whether this worker holds it now.
func (o *Leases) Acquire(ctx context.Context, partition int, ttl time.Duration) (bool, error) {
	var ok bool
	err := o.s.c.Do(func() (err error) {
		ok, err = o.s.c.Redis().SetNX(ctx, o.leaseKey(partition), o.name, ttl).Result()
		return err
	})
	if err != nil {
		return false, redis.Translate(err, "acquire partition")
	}
	return ok, nil
}

// renewScript extends a lease only for its owner.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes a lease only for its owner.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Renew extends this worker's lease of a partition by ttl, and reports
// whether it still held it.
func (o *Leases) Renew(ctx context.Context, partition int, ttl time.Duration) (bool, error) {
	var n int
	err := o.s.c.Do(func() (err error) {
		n, err = renewScript.Run(ctx, o.s.c.Redis(), []string{o.leaseKey(partition)}, o.name, ttl.Milliseconds()).Int()
		return err
	})
	if err != nil {
		return false, redis.Translate(err, "renew partition")
	}
	return n == 1, nil
}

// Release gives up this worker's lease of a partition, if it holds it.
func (o *Leases) Release(ctx context.Context, partition int) error {
	return redis.Translate(o.s.c.Do(func() error {
		return releaseScript.Run(ctx, o.s.c.Redis(), []string{o.leaseKey(partition)}, o.name).Err()
	}), "release partition")
}
