package pagecache

import (
	"context"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi/redis"
)

// budget is this process's part in keeping the channels' pages within
// Config.Bytes (see Cache): the channels it read, and the sizes of the
// indexes it built or extended, since it last reported them.
type budget struct {
	bytes    int // Config.Bytes
	channels int // Config.Channels; 0: no cap
	// The keys of the accounting, all on one slot: the cached channels by
	// when they were last read (ms), the bytes of each, and their total.
	lru, sizes, total string
	kick              chan struct{} // an index was built: report soon

	mu      sync.Mutex
	pending map[string]int // channel: bytes of the index built, or -1 when only read
}

// note records that channel was read, or with size >= 0 that its index
// was built or extended and takes about size bytes.
func (b *budget) note(channel string, size int) {
	b.mu.Lock()
	if _, ok := b.pending[channel]; !ok || size >= 0 {
		b.pending[channel] = max(size, -1)
	}
	b.mu.Unlock()
	if size >= 0 {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// built records what an install answered: the bytes the index of ix takes,
// or a negative size when it was refused. The default channel is cached
// whatever the budget.
func (pc *Cache) built(ix *index, size int) {
	if size >= 0 && ix != pc.def {
		pc.budget.note(ix.channel, size)
	}
}

// budgetScript adds a process's report to the accounting: each channel
// read (size -1) moves to the present if it is accounted; each built one
// is accounted with its size. Channels not read since ARGV[2] leave it
// (their keys have expired), then the channels read least recently, while
// the total is over the budget or, with a cap, there are more channels
// than it. It answers the channels it dropped for being over, whose keys
// the caller drops.
var budgetScript = goredis.NewScript(`
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
for i = 6, #ARGV, 2 do
  local ch, size = ARGV[i], tonumber(ARGV[i + 1])
  if size >= 0 then
    total = total + size - tonumber(redis.call('HGET', KEYS[2], ch) or '0')
    redis.call('HSET', KEYS[2], ch, size)
    redis.call('ZADD', KEYS[1], ARGV[1], ch)
  elseif redis.call('ZSCORE', KEYS[1], ch) then
    redis.call('ZADD', KEYS[1], ARGV[1], ch)
  end
end
local function drop(ch)
  total = total - tonumber(redis.call('HGET', KEYS[2], ch) or '0')
  redis.call('HDEL', KEYS[2], ch)
  redis.call('ZREM', KEYS[1], ch)
end
for _, ch in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, 10000)) do
  drop(ch)
end
local budget, most = tonumber(ARGV[3]), tonumber(ARGV[4])
local dropped = {}
while total > budget or (most > 0 and redis.call('ZCARD', KEYS[1]) > most) do
  local ch = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not ch then break end
  drop(ch)
  dropped[#dropped + 1] = ch
end
if total < 0 or redis.call('ZCARD', KEYS[1]) == 0 then total = 0 end
redis.call('SET', KEYS[3], total, 'PX', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return dropped
`)

// Account reports the channels this process read and built since it last
// did to the budget's accounting, and drops the pages of the channels
// that the budget no longer holds. Run calls it about once a second, and
// soon after an index is built.
func (pc *Cache) Account(ctx context.Context) error {
	b := &pc.budget
	b.mu.Lock()
	pending := b.pending
	b.pending = map[string]int{}
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	now := time.Now()
	args := make([]any, 0, 5+2*len(pending))
	args = append(args, now.UnixMilli(), now.Add(-2*pc.ttl).UnixMilli(), b.bytes, b.channels, (4 * pc.ttl).Milliseconds())
	for ch, size := range pending {
		args = append(args, ch, size)
	}
	var dropped []string
	err := pc.c.Do(func() (err error) {
		dropped, err = budgetScript.Run(ctx, pc.c.Redis(), []string{b.lru, b.sizes, b.total}, args...).StringSlice()
		return err
	})
	if err != nil {
		// Report the sizes again next time; what was read matters less.
		for ch, size := range pending {
			if size >= 0 {
				b.note(ch, size)
			}
		}
		return redis.Translate(err, "account cached pages")
	}
	for _, ch := range dropped {
		// When the drop fails, the index expires with its TTL.
		if pc.evict(ctx, pc.of(ch)) == nil {
			pc.metrics.evictions.Inc()
		}
	}
	return nil
}

// evictScript drops a channel's index with its entries, and announces it.
// A rebuild or an extension in flight is refused when it completes.
var evictScript = goredis.NewScript(`
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('DEL', ARGV[1] .. id) end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[2], 'i' .. ARGV[3])
return 1
`)

// evict drops the index ix and its entries, to free their memory.
func (pc *Cache) evict(ctx context.Context, ix *index) error {
	return redis.Translate(pc.c.Do(func() error {
		return evictScript.Run(ctx, pc.c.Redis(), []string{ix.index, ix.state, ix.pending, ix.extend},
			ix.prefix, pc.changesChannel(), ix.note).Err()
	}), "evict")
}
