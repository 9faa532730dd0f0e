package pagecache

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi"
	"messageapi/redis"
)

// Defaults of Config.
const (
	DefaultPages        = 50
	DefaultChannelPages = 5
	DefaultBytes        = 256 << 20
	DefaultTTL          = time.Minute
)

// Config configures a Cache.
type Config struct {
	// Pages and PageSize give the cached range of the default channel:
	// its latest Pages*PageSize messages. Defaults: DefaultPages pages of
	// messageapi.DefaultPageSize.
	Pages    int
	PageSize int
	// ChannelPages is Pages for every other channel. Default
	// DefaultChannelPages.
	ChannelPages int
	// Bytes is about how much of Redis the cached pages of the channels
	// besides the default one may take, together, whichever processes
	// read them: past it, the pages of the channels read least recently
	// are dropped. Default DefaultBytes.
	Bytes int
	// Channels, when positive, also caps how many channels besides the
	// default one are cached at once.
	Channels int
	// TTL bounds how long an index lives before it is rebuilt from
	// PostgreSQL, and so how long any staleness can last. Default
	// DefaultTTL.
	TTL time.Duration
}

// Cache caches the latest messages of channels with their views: always
// those of the default channel, and those of every other channel read
// lately, within a byte budget (Config.Bytes) shared by every process.
// It reads every other page from PostgreSQL.
//
// Keys, under the client's prefix, for each cached channel; a channel's
// keys share the hash tag {<prefix>cache} for the default channel and
// {<prefix>cache:<channel>} for any other, so each channel's scripts run
// on one slot:
//   - :latest, a sorted set of the channel's newest message ids. Every
//     member has score 0, so the set orders by member; a UUIDv7 in
//     canonical form sorts by creation time, so the set is in creation
//     order.
//   - :latest:state, "ready:<capacity>" while the index holds the
//     newest <capacity> messages (or all of them, when there are fewer),
//     "fill:<token>:<capacity>" while a rebuild is in flight, absent
//     otherwise. Reads use the index only when it is ready, and judge
//     whether it covers a page by the capacity recorded there, so processes
//     configured with different page counts still read it right. The
//     capacity is as deep as the pages read so far: a rebuild holds the
//     messages down to the page that missed, and a read of a deeper page
//     extends the index down to it, up to the configured pages.
//   - :latest:pending, the ids written through while a rebuild is in
//     flight, which the rebuild merges.
//   - :latest:extend, the token of the extension in flight, if any.
//   - :msg:<id>, a hash {v: view version, d: the view as the API
//     writes it}, kept for the messages in the index. It is replaced only
//     by a higher version (compare-and-set in Lua), and served as stored.
//
// The index holds the pages read plus one id, so the last cached page
// still knows whether there is a next one.
//
// Why the state key: a rebuild reads PostgreSQL, then installs the result;
// a message created in between would be missing from it. Its write-through
// finds the rebuild in flight and records the id in the pending set, which
// the rebuild merges, so writes never cancel rebuilds and a rebuild never
// installs a snapshot that lacks a message. A write-through that finds no
// index adds nothing, so an index that Redis lost (restart) never comes
// back holding only the messages written since.
//
// Every process writes through to the index of any channel, whichever
// channels it reads itself, so an index is exact whoever built it.
//
// The budget: beside the channels' keys, under the hash tag
// {<prefix>cache-budget}, a sorted set of the cached channels by when
// they were last read, with the bytes each index took when it was built
// or extended, and their total. Each process adds what it read and built
// there about once a second (see Run), in one script that also drops the
// channels read least recently until the total is within the budget; the
// process then drops their indexes, entries included, each on its own
// slot. The accounting is approximate (a write-through changes an index's
// size a little; a report lost with Redis is missing until the channel is
// built again), and it never decides what a read returns: a dropped index
// is a miss, as an expired one. Channels not read for twice the TTL have
// expired and leave the accounting.
type Cache struct {
	c        *redis.Client
	metrics  *metrics
	pageSize int
	pages    int // Config.ChannelPages
	ttl      time.Duration
	// failures counts writes that failed, after which an index may lack a
	// message (a write-through) or hold a stale view (a refresh); healed is
	// the count the last heal dropped the failed indexes for. A generation
	// rather than a flag: a failure during a heal is not forgotten by it.
	// failedBy holds, by channel, the failures not yet healed.
	failures atomic.Uint64
	healed   atomic.Uint64
	failMu   sync.Mutex
	failedBy map[string]uint64

	def *index // the default channel's, always cached

	// flights are the rebuilds and extensions in flight in this process,
	// by channel. Requests that miss while one runs wait for it instead of
	// starting their own, so a cold cache under load costs one PostgreSQL
	// read, not one a request.
	flightMu sync.Mutex
	flights  map[string]*fillCall

	budget budget
}

// index is one channel's cached pages: its keys.
type index struct {
	channel  string
	capacity int
	index    string // the key of the sorted set
	state    string
	pending  string
	extend   string // the token of the extension in flight, if any
	prefix   string // of the entries' keys
	note     string // added to the channel's announcements
}

// fillCall is one rebuild or extension that several requests may wait
// for.
type fillCall struct {
	done  chan struct{}
	views []messageapi.EncodedView // nil when Redis could not take a rebuild
	err   error
}

// New returns a Cache on c.
func New(c *redis.Client, cfg Config) *Cache {
	cfg.Pages = cmp.Or(max(cfg.Pages, 0), DefaultPages)
	cfg.ChannelPages = cmp.Or(max(cfg.ChannelPages, 0), DefaultChannelPages)
	cfg.PageSize = cmp.Or(max(cfg.PageSize, 0), messageapi.DefaultPageSize)
	cfg.Bytes = cmp.Or(max(cfg.Bytes, 0), DefaultBytes)
	cfg.TTL = cmp.Or(max(cfg.TTL, 0), DefaultTTL)
	pc := &Cache{c: c, metrics: metricSet.Of(c), pageSize: cfg.PageSize, pages: cfg.ChannelPages, ttl: cfg.TTL,
		failedBy: map[string]uint64{}, flights: map[string]*fillCall{}}
	pc.budget = budget{bytes: cfg.Bytes, channels: max(cfg.Channels, 0), kick: make(chan struct{}, 1), pending: map[string]int{},
		lru: c.Key("cache-budget", ":lru"), sizes: c.Key("cache-budget", ":sizes"), total: c.Key("cache-budget", ":total")}
	pc.def = pc.newIndex(messageapi.DefaultChannel, cfg.Pages)
	return pc
}

// newIndex returns the index of channel, holding pages pages.
func (pc *Cache) newIndex(channel string, pages int) *index {
	group, note := "cache", ""
	if channel != messageapi.DefaultChannel {
		group, note = "cache:"+channel, " "+channel
	}
	return &index{channel: channel, capacity: pages*pc.pageSize + 1, note: note,
		index: pc.c.Key(group, ":latest"), state: pc.c.Key(group, ":latest:state"),
		pending: pc.c.Key(group, ":latest:pending"), extend: pc.c.Key(group, ":latest:extend"),
		prefix: pc.c.Key(group, ":msg:")}
}

// of returns the index of channel.
func (pc *Cache) of(channel string) *index {
	if channel == "" || channel == messageapi.DefaultChannel {
		return pc.def
	}
	return pc.newIndex(channel, pc.pages)
}

// reading returns the index of channel for a read, and counts it as read
// now in the budget's accounting.
func (pc *Cache) reading(channel string) *index {
	ix := pc.of(channel)
	if ix != pc.def {
		pc.budget.note(channel, -1)
	}
	return ix
}

// capacityOf returns how many ids the index of channel holds at most.
func (pc *Cache) capacityOf(channel string) int {
	if channel == "" || channel == messageapi.DefaultChannel {
		return pc.def.capacity
	}
	return pc.pages*pc.pageSize + 1
}

func (ix *index) entryKey(id string) string { return ix.prefix + id }

// changesChannel is the pub/sub channel every change of the cache is
// announced on, for the near caches of API processes (see NearCache). An
// announcement is a letter, followed for any channel but the default one
// by a space and the channel.
func (pc *Cache) changesChannel() string { return pc.c.Key("cache", ":changes") }

// Entries outlive the index that lists them, so a ready index never points
// at an expired entry in normal operation.
func (pc *Cache) entryTTL() int64 { return (2 * pc.ttl).Milliseconds() }

// luaHelpers are shared by the scripts that write the index.
//
// put writes an entry unless it holds the same or a newer version, never
// shortens its lifetime, and reports whether it wrote. bytes estimates
// what an index and its entries take of Redis. trim cuts the index back
// to cap ids and deletes the entries of the ids it drops.
const luaHelpers = `
local function put(key, version, data, ttl)
  local cur = redis.call('HGET', key, 'v')
  local newer = (not cur) or tonumber(cur) < tonumber(version)
  if newer then redis.call('HSET', key, 'v', version, 'd', data) end
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
  return newer
end
local function bytes(index, prefix)
  -- The channel's own keys (state, index) count even when it holds no
  -- message: reads of channels that do not exist still take memory.
  local n = 256 + #index
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    n = n + redis.call('HSTRLEN', prefix .. id, 'd') + 2 * #id + #prefix + 100
  end
  return n
end
local function trim(index, cap, prefix)
  local over = redis.call('ZCARD', index) - cap
  if over <= 0 then return end
  local gone = redis.call('ZRANGE', index, 0, over - 1)
  redis.call('ZREMRANGEBYRANK', index, 0, over - 1)
  for _, id in ipairs(gone) do redis.call('DEL', prefix .. id) end
end
`

// readScript serves a page from the index in one round trip. It answers
// {0} for a miss, {0, depth} for a miss of a page that a ready index would
// serve if it held the newest depth messages, and {1, id, json, id,
// json...} for a hit. A short result is a hit only when the index is
// complete (holds fewer ids than its capacity: every message there is);
// otherwise the page reaches past the cached range. An index whose key is
// gone (evicted) is a miss, never an empty page.
var readScript = goredis.NewScript(`
local st = redis.call('GET', KEYS[2])
if not st or string.sub(st, 1, 6) ~= 'ready:' then return {0} end
local n = redis.call('ZCARD', KEYS[1])
if n == 0 then return {0} end
local count = tonumber(ARGV[4])
local ids
local depth = 0
if ARGV[2] == 'rank' then
  local start = tonumber(ARGV[3])
  ids = redis.call('ZRANGE', KEYS[1], start, start + count - 1, 'REV')
  depth = start + count
else
  ids = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[3], '-', 'BYLEX', 'REV', 'LIMIT', 0, count)
  -- The index holds every message from its oldest id up: a cursor at or
  -- above it needs the ids down to it, and count more.
  if ARGV[3] >= redis.call('ZRANGE', KEYS[1], 0, 0)[1] then
    depth = redis.call('ZLEXCOUNT', KEYS[1], '[' .. ARGV[3], '+') + count
  end
end
if #ids < count and n >= tonumber(string.sub(st, 7)) then return {0, depth} end
local out = {1}
for i = 1, #ids do
  local d = redis.call('HGET', ARGV[1] .. ids[i], 'd')
  if not d then return {0} end
  out[#out + 1] = ids[i]
  out[#out + 1] = d
end
return out
`)

// Latest returns the views of r, a range of the newest messages of its
// channel, newest first. A range inside the cached pages is served from
// Redis in one round trip when the index holds it exactly. On a miss of a
// channel without an index, the first request builds one from load holding
// just the messages down to the end of its range, while concurrent ones
// wait for that rebuild; a miss of a range deeper than a ready index holds
// extends the index down to it, reading only the messages it lacks.
// Everything else, and everything while Redis is unavailable, comes from
// load.
func (pc *Cache) Latest(ctx context.Context, r messageapi.MessageRange, load messageapi.LoadViews) ([]messageapi.EncodedView, error) {
	if r.BeforeID == "" && !r.Latest() {
		return load(ctx, r)
	}
	ix := pc.reading(r.Channel())
	if r.BeforeID == "" && r.Offset+r.Limit > ix.capacity {
		return load(ctx, r)
	}
	read := func() ([]messageapi.EncodedView, bool, int, error) {
		if r.BeforeID != "" {
			return pc.pageBefore(ctx, ix, r.BeforeID, r.Limit)
		}
		return pc.page(ctx, ix, r.Offset, r.Limit)
	}
	views, hit, depth, err := read()
	switch {
	case err == nil && hit:
		return views, nil
	case err == nil && depth > 0 && depth <= ix.capacity:
		// The index is ready but does not reach this page: extend it. Its
		// pages stay served meanwhile.
		if _, _, err := pc.shared(ctx, ix, func(ctx context.Context) ([]messageapi.EncodedView, error) {
			return nil, pc.extend(ctx, ix, depth, load)
		}); err != nil {
			return nil, err
		}
		if views, hit, _, err := read(); err == nil && hit {
			return views, nil
		}
		return load(ctx, r)
	case err != nil || r.BeforeID != "":
		return load(ctx, r)
	}
	latest, joined, err := pc.shared(ctx, ix, func(ctx context.Context) ([]messageapi.EncodedView, error) {
		return pc.rebuild(ctx, ix, r.Offset+r.Limit, load)
	})
	switch {
	case err != nil:
		return nil, err
	case joined:
		// This request joined a rebuild or an extension that another one
		// began, perhaps before a message this request must see was
		// committed, and perhaps of fewer messages than it needs. The index
		// has that message (a rebuild merges the writes made while it runs),
		// and so does PostgreSQL; the rebuild's snapshot may not.
		if views, hit, _, err := read(); err == nil && hit {
			return views, nil
		}
		return load(ctx, r)
	case latest == nil: // Redis cannot take a rebuild now: read just this page
		return load(ctx, r)
	}
	return window(latest, r.Offset, r.Limit), nil
}

// shared runs work, a rebuild or an extension of the index, unless one is
// in flight in this process, in which case it waits for that one instead;
// joined reports that it did. The work runs to its end even when the
// request that began it gives up, because others wait for it.
func (pc *Cache) shared(ctx context.Context, ix *index, work func(context.Context) ([]messageapi.EncodedView, error)) (views []messageapi.EncodedView, joined bool, err error) {
	pc.flightMu.Lock()
	if c := pc.flights[ix.channel]; c != nil {
		pc.flightMu.Unlock()
		pc.metrics.fills.WithLabelValues("joined").Inc()
		select {
		case <-c.done:
			return c.views, true, c.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	c := &fillCall{done: make(chan struct{})}
	pc.flights[ix.channel] = c
	pc.flightMu.Unlock()

	c.views, c.err = work(context.WithoutCancel(ctx))
	pc.flightMu.Lock()
	delete(pc.flights, ix.channel)
	pc.flightMu.Unlock()
	close(c.done)
	return c.views, false, c.err
}

// rebuild is one rebuild of the index, holding the newest depth messages:
// it marks itself in flight, reads the newest views, and installs them
// unless another rebuild or an invalidation came in between. It returns
// the views it read, or nil when Redis cannot take a rebuild now. A
// refused or failed install only means the next read misses too.
func (pc *Cache) rebuild(ctx context.Context, ix *index, depth int, load messageapi.LoadViews) ([]messageapi.EncodedView, error) {
	depth = min(max(depth, 1), ix.capacity)
	token, err := pc.beginFill(ctx, ix, depth)
	if err != nil {
		return nil, nil
	}
	views, err := load(ctx, messageapi.MessageRange{ChannelID: ix.channel, Limit: depth})
	if err != nil {
		return nil, err
	}
	if views == nil {
		views = []messageapi.EncodedView{}
	}
	_, _ = pc.completeFill(ctx, ix, token, depth, views)
	return views, nil
}

// extendTTL bounds how long an extension may take: while one is in flight,
// write-throughs do not trim the index (see addScript).
const extendTTL = 5 * time.Second

// beginExtendScript marks an extension of a ready index in flight, unless
// one is already (or the index is complete, or not ready), and returns the
// index's oldest id and its size.
var beginExtendScript = goredis.NewScript(`
local st = redis.call('GET', KEYS[2])
if not st or string.sub(st, 1, 6) ~= 'ready:' then return false end
local n = redis.call('ZCARD', KEYS[1])
if n == 0 or n < tonumber(string.sub(st, 7)) then return false end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return {redis.call('ZRANGE', KEYS[1], 0, 0)[1], n}
`)

// extendScript installs an extension: the views of the messages right
// below the index's oldest id, read after beginExtend, and answers the
// bytes the index now takes, or -1 when it is refused: when
// the extension is no longer the one in flight (a rebuild or an
// invalidation came in between) or the oldest id changed (the index key
// was lost, or a message older than it was written through, which the
// views may lack). The entries are
// written by compare-and-set, and refreshes write every entry while an
// extension is in flight (see refreshScript), so a view refreshed
// meanwhile stays. The index's lifetime is not extended: it still bounds
// how long a missed write can last.
var extendScript = goredis.NewScript(luaHelpers + `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[3])
local st = redis.call('GET', KEYS[2])
if not st or string.sub(st, 1, 6) ~= 'ready:' then return -1 end
local cap = tonumber(string.sub(st, 7))
if redis.call('ZRANGE', KEYS[1], 0, 0)[1] ~= ARGV[2] then
  trim(KEYS[1], cap, ARGV[4])
  return -1
end
for i = 8, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], 0, ARGV[i])
  put(ARGV[4] .. ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[3])
end
cap = math.max(cap, tonumber(ARGV[5]))
trim(KEYS[1], cap, ARGV[4])
redis.call('SET', KEYS[2], 'ready:' .. cap, 'KEEPTTL')
redis.call('PUBLISH', ARGV[6], 'f' .. ARGV[7])
return bytes(KEYS[1], ARGV[4])
`)

// extend makes a ready index hold the newest depth messages, reading from
// load only the ones below its oldest. Nothing is done when another
// extension is in flight, or the index is not ready or already complete;
// the read then comes from PostgreSQL.
func (pc *Cache) extend(ctx context.Context, ix *index, depth int, load messageapi.LoadViews) error {
	token := newToken()
	var res []any
	err := pc.c.Do(func() (err error) {
		res, err = beginExtendScript.Run(ctx, pc.c.Redis(), []string{ix.index, ix.state, ix.extend},
			token, extendTTL.Milliseconds()).Slice()
		if errors.Is(err, goredis.Nil) {
			res, err = nil, nil
		}
		return err
	})
	if err != nil || len(res) != 2 {
		return nil
	}
	oldest, _ := res[0].(string)
	n, _ := res[1].(int64)
	var views []messageapi.EncodedView
	if want := depth - int(n); want > 0 {
		if views, err = load(ctx, messageapi.MessageRange{ChannelID: ix.channel, BeforeID: oldest, Limit: want}); err != nil {
			pc.abandon(ix.extend, token)
			return err
		}
	}
	args := make([]any, 0, 7+3*len(views))
	args = append(args, token, oldest, pc.entryTTL(), ix.prefix, depth, pc.changesChannel(), ix.note)
	for _, v := range views {
		args = append(args, v.ID, v.Version, v.JSON)
	}
	size := -1
	err = pc.c.Do(func() (err error) {
		size, err = extendScript.Run(ctx, pc.c.Redis(), []string{ix.index, ix.state, ix.extend}, args...).Int()
		return err
	})
	if err != nil {
		pc.abandon(ix.extend, token)
		pc.metrics.fills.WithLabelValues("error").Inc()
		return nil
	}
	pc.metrics.fills.WithLabelValues(map[bool]string{true: "extended", false: "refused"}[size >= 0]).Inc()
	pc.built(ix, size)
	return nil
}

// abandonScript deletes the mark of an extension in flight if it is still
// token's.
var abandonScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// abandon ends the extension token that failed, at once rather than at
// the mark's expiry: until then write-throughs do not trim the index and
// other extensions are refused. If Redis does not answer, the mark
// expires after extendTTL.
func (pc *Cache) abandon(key, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = pc.c.Do(func() error { return abandonScript.Run(ctx, pc.c.Redis(), []string{key}, token).Err() })
}

// newToken returns a random token naming one rebuild or extension.
func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// window returns views[offset:offset+count], clipped to what exists.
func window(views []messageapi.EncodedView, offset, count int) []messageapi.EncodedView {
	if offset >= len(views) {
		return []messageapi.EncodedView{}
	}
	return views[offset:min(offset+count, len(views))]
}

// Run drops an index that may lack a message as soon as Redis answers
// again, rather than when this process next reads a page, and keeps the
// budget's accounting of the channels this process read and built (see
// Account), until ctx ends.
func (pc *Cache) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = pc.heal(ctx)
			_ = pc.Account(ctx)
		case <-pc.budget.kick:
			// Soon, and in one report with the other indexes built
			// meanwhile.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			_ = pc.Account(ctx)
		}
	}
}

// page returns up to count views starting at rank offset (0 is the newest
// message), as the stored JSON. hit is false when the cache cannot answer
// exactly; depth is then, when positive, how many of the newest messages
// the ready index would need to hold to answer.
func (pc *Cache) page(ctx context.Context, ix *index, offset, count int) (views []messageapi.EncodedView, hit bool, depth int, err error) {
	return pc.read(ctx, ix, "rank", strconv.Itoa(offset), count)
}

// pageBefore returns up to count views of the messages older than
// beforeID, newest first.
func (pc *Cache) pageBefore(ctx context.Context, ix *index, beforeID string, count int) (views []messageapi.EncodedView, hit bool, depth int, err error) {
	return pc.read(ctx, ix, "lex", beforeID, count)
}

func (pc *Cache) read(ctx context.Context, ix *index, mode, from string, count int) ([]messageapi.EncodedView, bool, int, error) {
	if err := pc.heal(ctx); err != nil {
		return nil, false, 0, err
	}
	var res []any
	err := pc.c.Do(func() (err error) {
		res, err = readScript.Run(ctx, pc.c.Redis(), []string{ix.index, ix.state},
			ix.prefix, mode, from, count).Slice()
		return err
	})
	if err != nil {
		pc.metrics.cache.WithLabelValues("error").Inc()
		return nil, false, 0, redis.Translate(err, "read page")
	}
	if len(res) == 0 || res[0] != int64(1) || len(res)%2 != 1 {
		pc.metrics.cache.WithLabelValues("miss").Inc()
		depth := 0
		if len(res) == 2 {
			d, _ := res[1].(int64)
			depth = int(d)
		}
		return nil, false, depth, nil
	}
	views := make([]messageapi.EncodedView, 0, len(res)/2)
	for i := 1; i < len(res); i += 2 {
		id, ok1 := res[i].(string)
		data, ok2 := res[i+1].(string)
		if !ok1 || !ok2 {
			return nil, false, 0, fmt.Errorf("read page: unexpected reply %T, %T", res[i], res[i+1])
		}
		views = append(views, messageapi.EncodedView{ID: id, JSON: []byte(data)})
	}
	pc.metrics.cache.WithLabelValues("hit").Inc()
	return views, true, 0, nil
}

// addScript is the write-through of a message: into a ready index (trimmed
// back to its capacity, unless an extension is in flight: that one would
// otherwise find the oldest id gone and be refused, on a busy channel
// every time), or into the pending set of a rebuild in flight, with its
// entry by compare-and-set. Without an index it does nothing.
//
// A message older than the index's oldest id (its transaction committed
// late) is the exception: kept untrimmed, it would sit below messages the
// index lacks, a hole every read across it would skip. It refuses the
// extension in flight (which may lack it) and is trimmed away as usual.
var addScript = goredis.NewScript(luaHelpers + `
-- Every new message is announced, cached or not: a near cache may hold a
-- page read from PostgreSQL that lacks it.
redis.call('PUBLISH', ARGV[6], 'm' .. ARGV[7])
local st = redis.call('GET', KEYS[2])
if not st then return 0 end
if string.sub(st, 1, 6) == 'ready:' then
  -- Older than every id of the index (compared as the index orders them):
  if redis.call('ZCARD', KEYS[1]) > 0 and #redis.call('ZRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[1], 'LIMIT', 0, 1) == 0 then
    redis.call('DEL', KEYS[5])
  end
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[2]), 1))
  end
  if redis.call('EXISTS', KEYS[5]) == 0 then trim(KEYS[1], tonumber(string.sub(st, 7)), ARGV[5]) end
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
else
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('PEXPIRE', KEYS[4], math.max(redis.call('PTTL', KEYS[2]), 1))
end
put(KEYS[3], ARGV[2], ARGV[3], ARGV[4])
return 1
`)

// AddMessage writes a message through to the index of its channel, so
// its author reads it at once; a retried create writes the stored view
// through again. When this fails the index may lack the message, so the
// cache drops the index as soon as Redis answers again (see Run).
func (pc *Cache) AddMessage(ctx context.Context, v messageapi.MessageView) error {
	e, err := v.Encode()
	if err != nil {
		return err
	}
	ix := pc.of(v.ChannelID)
	err = pc.c.Do(func() error {
		return addScript.Run(ctx, pc.c.Redis(),
			[]string{ix.index, ix.state, ix.entryKey(v.ID), ix.pending, ix.extend},
			v.ID, v.Version, e.JSON, pc.entryTTL(), ix.prefix, pc.changesChannel(), ix.note).Err()
	})
	if err != nil {
		pc.fail(ix.channel)
		return redis.Translate(err, "add message")
	}
	return nil
}

// fail records a failed write to the index of channel, which the next
// heal drops.
func (pc *Cache) fail(channel string) {
	pc.failMu.Lock()
	defer pc.failMu.Unlock()
	pc.failedBy[channel]++
	pc.failures.Add(1)
}

// heal drops each index that a write failed for since the last heal.
// Reads call it first, and Run on a timer.
func (pc *Cache) heal(ctx context.Context) error {
	failures := pc.failures.Load()
	if failures == pc.healed.Load() {
		return nil
	}
	pc.failMu.Lock()
	failed := maps.Clone(pc.failedBy)
	pc.failMu.Unlock()
	for channel, n := range failed {
		if err := pc.invalidate(ctx, pc.of(channel)); err != nil {
			return err
		}
		pc.failMu.Lock()
		if pc.failedBy[channel] == n { // else it failed again meanwhile
			delete(pc.failedBy, channel)
		}
		pc.failMu.Unlock()
	}
	pc.healed.Store(failures)
	return nil
}

// invalidate drops the index ix; the next read of one of its cached pages
// rebuilds it.
func (pc *Cache) invalidate(ctx context.Context, ix *index) error {
	return redis.Translate(pc.c.Do(func() error {
		_, err := pc.c.Redis().Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.Del(ctx, ix.state, ix.index, ix.pending, ix.extend)
			p.Publish(ctx, pc.changesChannel(), "i"+ix.note)
			return nil
		})
		return err
	}), "invalidate")
}

// beginFill starts a rebuild of the index, to hold the newest depth
// messages, and returns its token. Read the newest depth views from
// PostgreSQL after this call, then pass them to completeFill. A rebuild
// started later takes over from this one, and this one from any extension
// in flight.
func (pc *Cache) beginFill(ctx context.Context, ix *index, depth int) (string, error) {
	token := "fill:" + newToken() + ":" + strconv.Itoa(depth)
	err := pc.c.Do(func() error {
		_, err := pc.c.Redis().TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, ix.state, token, pc.ttl)
			p.Del(ctx, ix.pending, ix.extend)
			return nil
		})
		return err
	})
	if err != nil {
		pc.metrics.fills.WithLabelValues("error").Inc()
		return "", redis.Translate(err, "begin fill")
	}
	return token, nil
}

// fillScript installs a rebuilt index if its token is still current,
// merging the ids written through since the rebuild began, and answers
// the bytes it takes, or -1 when it is refused.
var fillScript = goredis.NewScript(luaHelpers + `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
for i = 8, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], 0, ARGV[i])
  put(ARGV[4] .. ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[3])
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('ZADD', KEYS[1], 0, id)
end
redis.call('DEL', KEYS[3])
trim(KEYS[1], tonumber(ARGV[5]), ARGV[4])
redis.call('SET', KEYS[2], 'ready:' .. ARGV[5], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[6], 'f' .. ARGV[7])
return bytes(KEYS[1], ARGV[4])
`)

// completeFill installs views, the newest depth messages newest first, as
// the index, together with the messages written through since beginFill.
// It is refused (installed is false) when another rebuild or an
// invalidation came in between. Entries are written by compare-and-set, so
// a view the projection refreshed meanwhile stays.
func (pc *Cache) completeFill(ctx context.Context, ix *index, token string, depth int, views []messageapi.EncodedView) (installed bool, err error) {
	args := make([]any, 0, 7+3*len(views))
	args = append(args, token, pc.ttl.Milliseconds(), pc.entryTTL(), ix.prefix, depth, pc.changesChannel(), ix.note)
	for _, v := range views {
		args = append(args, v.ID, v.Version, v.JSON)
	}
	size := -1
	err = pc.c.Do(func() (err error) {
		size, err = fillScript.Run(ctx, pc.c.Redis(), []string{ix.index, ix.state, ix.pending}, args...).Int()
		return err
	})
	if err != nil {
		pc.metrics.fills.WithLabelValues("error").Inc()
		return false, redis.Translate(err, "complete fill")
	}
	result := map[bool]string{true: "installed", false: "refused"}[size >= 0]
	pc.metrics.fills.WithLabelValues(result).Inc()
	pc.built(ix, size)
	return size >= 0, nil
}

// refreshScript replaces cached views by newer versions. It writes the
// entries of messages in the index, of messages newer than the oldest one
// there (whose write-through may still be on its way: it then finds this
// newer view and keeps it), and of any message while a rebuild or an
// extension is in flight (it may have read an older view). Views of other
// messages are not written, so Redis holds only what reads can use.
var refreshScript = goredis.NewScript(luaHelpers + `
local st = redis.call('GET', KEYS[2]) or ''
local filling = string.sub(st, 1, 5) == 'fill:' or redis.call('EXISTS', KEYS[3]) == 1
local oldest = nil
if string.sub(st, 1, 6) == 'ready:' then oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1] end
local n = 0
for i = 4, #KEYS do
  local j = (i - 4) * 3 + 2
  local id = ARGV[j]
  if (filling or (oldest and id >= oldest) or redis.call('ZSCORE', KEYS[1], id))
    and put(KEYS[i], ARGV[j + 1], ARGV[j + 2], ARGV[1]) then
    n = n + 1
  end
end
-- Announced even when no entry changed: a near cache may hold a page
-- of these messages read from PostgreSQL.
redis.call('PUBLISH', ARGV[#ARGV - 1], 'v' .. ARGV[#ARGV])
return n
`)

// UpdateMessage writes the view of an edited or deleted message to the
// cache where it keeps it, over any older version; see RefreshViews.
func (pc *Cache) UpdateMessage(ctx context.Context, v messageapi.MessageView) error {
	_, err := pc.RefreshViews(ctx, []messageapi.MessageView{v})
	return err
}

// RefreshViews writes the given views to the cache where it keeps them
// (see refreshScript), each only over an older version, and reports how
// many it wrote: one round trip for each channel of the views. After a
// failure the channel's index is dropped once Redis answers again (see
// Run), so a process that refreshes views must run Run.
func (pc *Cache) RefreshViews(ctx context.Context, views []messageapi.MessageView) (int, error) {
	byChannel := map[string][]messageapi.MessageView{}
	var channels []string
	for _, v := range views {
		ch := v.Channel()
		if byChannel[ch] == nil {
			channels = append(channels, ch)
		}
		byChannel[ch] = append(byChannel[ch], v)
	}
	written := 0
	var errs []error
	for _, ch := range channels {
		n, err := pc.refresh(ctx, pc.of(ch), byChannel[ch])
		written += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return written, errors.Join(errs...)
}

// refresh is RefreshViews for the views of one channel.
func (pc *Cache) refresh(ctx context.Context, ix *index, views []messageapi.MessageView) (int, error) {
	keys := make([]string, 0, 3+len(views))
	keys = append(keys, ix.index, ix.state, ix.extend)
	args := make([]any, 0, 3+3*len(views))
	args = append(args, pc.entryTTL())
	for _, v := range views {
		e, err := v.Encode()
		if err != nil {
			return 0, err
		}
		keys = append(keys, ix.entryKey(v.ID))
		args = append(args, v.ID, v.Version, e.JSON)
	}
	args = append(args, pc.changesChannel(), ix.note)
	var n int
	err := pc.c.Do(func() (err error) {
		n, err = refreshScript.Run(ctx, pc.c.Redis(), keys, args...).Int()
		return err
	})
	if err != nil {
		// The cached entries of these views may now be stale, and a later
		// change may find nothing left to fold and never refresh them: drop
		// the index as soon as Redis answers again, so pages are rebuilt.
		pc.fail(ix.channel)
		return 0, redis.Translate(err, "refresh views")
	}
	return n, nil
}
