package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi"
)

// PageCacheConfig configures a PageCache.
type PageCacheConfig struct {
	// Pages and PageSize give the cached range: the latest Pages*PageSize
	// messages. Defaults: 5 pages of messageapi.DefaultPageSize.
	Pages    int
	PageSize int
	// TTL bounds how long an index lives before it is rebuilt from
	// PostgreSQL, and so how long any staleness can last. Default 1 minute.
	TTL time.Duration
}

// PageCache caches the latest messages with their views.
//
// Keys, under the client's prefix:
//   - cache:latest, a sorted set of the newest message ids. Every member has
//     score 0, so the set orders by member; a UUIDv7 in canonical form sorts
//     by creation time, so the set is in creation order.
//   - cache:latest:state, "ready" while the index is complete and current,
//     "fill:<token>" while a rebuild is in flight, absent otherwise. Reads
//     use the index only when it is "ready".
//   - cache:msg:<id>, a hash {v: view version, d: the view as the API
//     writes it}. It is replaced only by a higher version (compare-and-set
//     in Lua), and served as stored.
//
// The index holds Capacity ids: the cached pages plus one, so the last
// cached page still knows whether there is a next one.
//
// Why the state key: a rebuild reads PostgreSQL, then installs the result.
// A message created in between would be missing from it. The write-through
// of that message finds the rebuild's token and deletes it, so the rebuild
// is refused and the next miss starts a fresh one. And a write-through that
// finds no index adds nothing, so an index that Redis lost (restart) never
// comes back holding only the messages written since.
type PageCache struct {
	c        *Client
	capacity int
	ttl      time.Duration
	// dirty is set when a write-through failed, so the index may lack a
	// message. The index is dropped as soon as Redis answers again.
	dirty atomic.Bool
}

// NewPageCache returns a PageCache on c.
func NewPageCache(c *Client, cfg PageCacheConfig) *PageCache {
	if cfg.Pages <= 0 {
		cfg.Pages = 5
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = messageapi.DefaultPageSize
	}
	if cfg.TTL <= 0 {
		cfg.TTL = time.Minute
	}
	return &PageCache{c: c, capacity: cfg.Pages*cfg.PageSize + 1, ttl: cfg.TTL}
}

// Capacity is how many of the newest messages the index holds.
func (pc *PageCache) Capacity() int { return pc.capacity }

func (pc *PageCache) indexKey() string          { return pc.c.prefix + "cache:latest" }
func (pc *PageCache) stateKey() string          { return pc.c.prefix + "cache:latest:state" }
func (pc *PageCache) entryPrefix() string       { return pc.c.prefix + "cache:msg:" }
func (pc *PageCache) entryKey(id string) string { return pc.entryPrefix() + id }

// Entries outlive the index that lists them, so a ready index never points
// at an expired entry in normal operation.
func (pc *PageCache) entryTTL() int64 { return (2 * pc.ttl).Milliseconds() }

// readScript serves a page from the index in one round trip. It answers
// {0} for a miss and {1, id, json, id, json...} for a hit. A short result is a hit only
// when the index is complete (holds fewer than capacity ids: every message
// there is), otherwise the page reaches past the cached range.
var readScript = goredis.NewScript(`
if redis.call('GET', KEYS[2]) ~= 'ready' then return {0} end
local count = tonumber(ARGV[4])
local ids
if ARGV[2] == 'rank' then
  local start = tonumber(ARGV[3])
  ids = redis.call('ZRANGE', KEYS[1], start, start + count - 1, 'REV')
else
  ids = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[3], '-', 'BYLEX', 'REV', 'LIMIT', 0, count)
end
if #ids < count and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then return {0} end
local out = {1}
for i = 1, #ids do
  local d = redis.call('HGET', ARGV[1] .. ids[i], 'd')
  if not d then return {0} end
  out[#out + 1] = ids[i]
  out[#out + 1] = d
end
return out
`)

// Page returns up to count views starting at rank offset (0 is the newest
// message), as the stored JSON. hit is false when the cache cannot answer
// exactly.
func (pc *PageCache) Page(ctx context.Context, offset, count int) (views []messageapi.EncodedView, hit bool, err error) {
	return pc.read(ctx, "rank", strconv.Itoa(offset), count)
}

// PageBefore returns up to count views of the messages older than
// beforeID, newest first.
func (pc *PageCache) PageBefore(ctx context.Context, beforeID string, count int) (views []messageapi.EncodedView, hit bool, err error) {
	return pc.read(ctx, "lex", beforeID, count)
}

func (pc *PageCache) read(ctx context.Context, mode, from string, count int) ([]messageapi.EncodedView, bool, error) {
	if err := pc.Heal(ctx); err != nil {
		return nil, false, err
	}
	var res []any
	err := pc.c.do(func() (err error) {
		res, err = readScript.Run(ctx, pc.c.rdb, []string{pc.indexKey(), pc.stateKey()},
			pc.entryPrefix(), mode, from, count, pc.capacity).Slice()
		return err
	})
	if err != nil {
		pc.c.metrics.cache.WithLabelValues("error").Inc()
		return nil, false, translate(err, "read page")
	}
	if len(res) == 0 || res[0] != int64(1) || len(res)%2 != 1 {
		pc.c.metrics.cache.WithLabelValues("miss").Inc()
		return nil, false, nil
	}
	views := make([]messageapi.EncodedView, 0, len(res)/2)
	for i := 1; i < len(res); i += 2 {
		id, ok1 := res[i].(string)
		data, ok2 := res[i+1].(string)
		if !ok1 || !ok2 {
			return nil, false, fmt.Errorf("read page: unexpected reply %T, %T", res[i], res[i+1])
		}
		views = append(views, messageapi.EncodedView{ID: id, JSON: []byte(data)})
	}
	pc.c.metrics.cache.WithLabelValues("hit").Inc()
	return views, true, nil
}

// addScript is the write-through of a new message: into the index when it
// is ready (trimmed back to capacity), voiding a rebuild in flight, and its
// entry by compare-and-set.
var addScript = goredis.NewScript(`
local st = redis.call('GET', KEYS[2])
if st == 'ready' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
  if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
elseif st then
  redis.call('DEL', KEYS[2])
end
local cur = redis.call('HGET', KEYS[3], 'v')
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], 'v', ARGV[2], 'd', ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
`)

// AddMessage writes a new message through to the cache, so its author reads
// it at once. When this fails the index may lack the message, so the cache
// marks itself dirty and drops the index as soon as Redis answers again.
func (pc *PageCache) AddMessage(ctx context.Context, v messageapi.MessageView) error {
	e, err := v.Encode()
	if err != nil {
		return err
	}
	err = pc.c.do(func() error {
		return addScript.Run(ctx, pc.c.rdb, []string{pc.indexKey(), pc.stateKey(), pc.entryKey(v.ID)},
			v.ID, v.Version, e.JSON, pc.entryTTL(), pc.capacity).Err()
	})
	if err != nil {
		pc.dirty.Store(true)
		return translate(err, "add message")
	}
	return nil
}

// Heal drops the index if a write-through failed since it was last healthy.
// Reads call it first; processes also call it on a timer, so an index that
// may lack a message is dropped soon after Redis is reachable again.
func (pc *PageCache) Heal(ctx context.Context) error {
	if !pc.dirty.Load() {
		return nil
	}
	if err := pc.Invalidate(ctx); err != nil {
		return err
	}
	pc.dirty.Store(false)
	return nil
}

// Invalidate drops the index; the next read of a cached page rebuilds it.
func (pc *PageCache) Invalidate(ctx context.Context) error {
	return translate(pc.c.do(func() error {
		return pc.c.rdb.Del(ctx, pc.stateKey(), pc.indexKey()).Err()
	}), "invalidate")
}

// BeginFill starts a rebuild of the index and returns its token. Read the
// newest Capacity views from PostgreSQL after this call, then pass them to
// CompleteFill.
func (pc *PageCache) BeginFill(ctx context.Context) (string, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := "fill:" + hex.EncodeToString(b)
	if err := pc.c.do(func() error { return pc.c.rdb.Set(ctx, pc.stateKey(), token, pc.ttl).Err() }); err != nil {
		pc.c.metrics.fills.WithLabelValues("error").Inc()
		return "", translate(err, "begin fill")
	}
	return token, nil
}

// fillScript installs a rebuilt index if its token is still current.
var fillScript = goredis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 5, #ARGV, 3 do
  local id, ver, data = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('ZADD', KEYS[1], 0, id)
  local k = ARGV[4] .. id
  local cur = redis.call('HGET', k, 'v')
  if (not cur) or tonumber(cur) < tonumber(ver) then
    redis.call('HSET', k, 'v', ver, 'd', data)
  end
  redis.call('PEXPIRE', k, ARGV[3])
end
redis.call('SET', KEYS[2], 'ready', 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// CompleteFill installs views, the newest Capacity messages newest first,
// as the index, unless a message was written through since BeginFill (then
// the views may lack it and installed is false). Entries are written by
// compare-and-set, so a view the projection refreshed meanwhile stays.
func (pc *PageCache) CompleteFill(ctx context.Context, token string, views []messageapi.EncodedView) (installed bool, err error) {
	args := make([]any, 0, 4+3*len(views))
	args = append(args, token, pc.ttl.Milliseconds(), pc.entryTTL(), pc.entryPrefix())
	for _, v := range views {
		args = append(args, v.ID, v.Version, v.JSON)
	}
	var n int
	err = pc.c.do(func() (err error) {
		n, err = fillScript.Run(ctx, pc.c.rdb, []string{pc.indexKey(), pc.stateKey()}, args...).Int()
		return err
	})
	if err != nil {
		pc.c.metrics.fills.WithLabelValues("error").Inc()
		return false, translate(err, "complete fill")
	}
	result := map[bool]string{true: "installed", false: "refused"}[n == 1]
	pc.c.metrics.fills.WithLabelValues(result).Inc()
	return n == 1, nil
}

// refreshScript replaces cached views by newer versions. It writes an entry
// that exists, or one of a message in the index, or any while a rebuild is
// in flight (the rebuild may have read an older view; the compare-and-set
// then keeps this newer one). Views of messages outside the cache are not
// written, so Redis holds only what reads can use.
var refreshScript = goredis.NewScript(`
local filling = string.sub(redis.call('GET', KEYS[2]) or '', 1, 5) == 'fill:'
local n = 0
for i = 3, #KEYS do
  local j = (i - 3) * 3 + 2
  local id, ver, data = ARGV[j], ARGV[j + 1], ARGV[j + 2]
  local cur = redis.call('HGET', KEYS[i], 'v')
  if cur or filling or redis.call('ZSCORE', KEYS[1], id) then
    if (not cur) or tonumber(cur) < tonumber(ver) then
      redis.call('HSET', KEYS[i], 'v', ver, 'd', data)
      redis.call('PEXPIRE', KEYS[i], ARGV[1])
      n = n + 1
    end
  end
end
return n
`)

// RefreshViews replaces cached views with the given ones where they are
// newer, and reports how many it replaced.
func (pc *PageCache) RefreshViews(ctx context.Context, views []messageapi.MessageView) (int, error) {
	if len(views) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, 2+len(views))
	keys = append(keys, pc.indexKey(), pc.stateKey())
	args := make([]any, 0, 1+3*len(views))
	args = append(args, pc.entryTTL())
	for _, v := range views {
		e, err := v.Encode()
		if err != nil {
			return 0, err
		}
		keys = append(keys, pc.entryKey(v.ID))
		args = append(args, v.ID, v.Version, e.JSON)
	}
	var n int
	err := pc.c.do(func() (err error) {
		n, err = refreshScript.Run(ctx, pc.c.rdb, keys, args...).Int()
		return err
	})
	if err != nil {
		return 0, translate(err, "refresh views")
	}
	return n, nil
}
