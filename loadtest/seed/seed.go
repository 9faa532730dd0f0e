package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// shape is what to seed.
type shape struct {
	Messages  int
	Channels  int
	Reactions int
	Users     int // 0: defaultUsers(Messages)
	Seed      int64
	// Span is the time the messages cover, ending shortly before now.
	Span time.Duration
}

// defaultUsers is 300,000 users for a million messages, in proportion
// below that (at least 100).
func defaultUsers(messages int) int {
	return min(300_000, max(100, int(int64(messages)*300_000/1_000_000)))
}

// The reaction types and their weights: "like" is the most common. A
// type of weight w is open to w/maxTypeWeight of the users, so each
// (message, user, type) key is drawn from a space of typeSpace(users)
// keys without repeats.
var (
	reactionTypes = []string{"like", "love", "haha", "wow", "sad", "clap"}
	typeWeights   = []int{40, 20, 15, 8, 5, 12}
)

const maxTypeWeight = 40

// typeUsers returns, per type, how many users react with it, and their
// sum: the number of distinct (user, type) keys on one message.
func typeUsers(users int) (perType []int64, total int64) {
	perType = make([]int64, len(typeWeights))
	for i, w := range typeWeights {
		perType[i] = max(1, int64(users)*int64(w)/maxTypeWeight)
		total += perType[i]
	}
	return perType, total
}

// Shares of the reactions.
const (
	hotShare      = 0.01 // on the one hottest message
	warmShare     = 0.09 // on the 99 other hot messages
	warmMessages  = 99
	recentShare   = 0.60 // on the newest recentPart of the messages
	recentPart    = 0.10
	maxPerMessage = 1 << 24 // reactions one message may get
)

// plan is the part of a seed decided in Go: the channels' shares, and the
// number of reactions of each message.
type plan struct {
	shape
	channelBounds []float64 // cumulative shares: message of uniform u is in channel width_bucket(u, bounds)
	counts        []int32   // reactions per message index
	hot           []int     // message indexes: the hottest first, then the 99 others
	typeUsers     []int64
	typeStart     []int64 // first key of each type in [0, keys)
	keys          int64   // distinct (user, type) keys
	stride        int64   // coprime with keys: the j-th reaction of a message takes key offset + j*stride mod keys
	end           int64   // unix milliseconds: no time of the seed is later
	step          int64   // milliseconds between two messages
	texts         []string
}

// newPlan checks s and decides the reactions of each message.
func newPlan(s shape, now time.Time) (*plan, error) {
	if s.Messages < 1 || s.Channels < 1 || s.Reactions < 0 || s.Users < 0 {
		return nil, errors.New("need at least one message and one channel, and no negative counts")
	}
	if s.Channels > s.Messages {
		return nil, errors.New("more channels than messages")
	}
	if s.Reactions > 0 && s.Messages < warmMessages+1 {
		return nil, fmt.Errorf("reactions need at least %d messages (the hot ones)", warmMessages+1)
	}
	explicitUsers := s.Users > 0
	if !explicitUsers {
		s.Users = defaultUsers(s.Messages)
	}
	if s.Span <= 0 {
		s.Span = 30 * 24 * time.Hour
	}
	p := &plan{shape: s}
	p.channelBounds = channelBounds(s.Channels)
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x5eed))
	p.counts = make([]int32, s.Messages)
	if s.Reactions > 0 {
		hotN := int(float64(s.Reactions) * hotShare)
		warmN := int(float64(s.Reactions) * warmShare)
		recentN := int(float64(s.Reactions) * recentShare)
		uniformN := s.Reactions - hotN - warmN - recentN
		p.hot = rng.Perm(s.Messages)[:warmMessages+1]
		p.counts[p.hot[0]] += int32(hotN)
		for k, m := range p.hot[1:] {
			n := warmN / warmMessages
			if k < warmN%warmMessages {
				n++
			}
			p.counts[m] += int32(n)
		}
		recentFrom := s.Messages - max(1, int(float64(s.Messages)*recentPart))
		for range recentN {
			p.counts[recentFrom+rng.IntN(s.Messages-recentFrom)]++
		}
		for range uniformN {
			p.counts[rng.IntN(s.Messages)]++
		}
	}
	most := int64(0)
	for _, n := range p.counts {
		most = max(most, int64(n))
	}
	if most >= maxPerMessage {
		return nil, fmt.Errorf("the hot message would get %d reactions; at most %d", most, maxPerMessage-1)
	}
	// Every reaction of a message needs a key of its own.
	p.typeUsers, p.keys = typeUsers(s.Users)
	for p.keys < most {
		if explicitUsers {
			return nil, fmt.Errorf("%d users make %d distinct (user, type) keys, fewer than the %d reactions of the hot message", s.Users, p.keys, most)
		}
		s.Users *= 2
		p.Users = s.Users
		p.typeUsers, p.keys = typeUsers(s.Users)
	}
	p.typeStart = make([]int64, len(p.typeUsers))
	for i := 1; i < len(p.typeUsers); i++ {
		p.typeStart[i] = p.typeStart[i-1] + p.typeUsers[i-1]
	}
	p.stride = coprimeNear(p.keys, int64(float64(p.keys)*0.6180339887)+1)
	p.end = now.UnixMilli() - 1000
	p.step = max(1, s.Span.Milliseconds()/int64(s.Messages))
	p.texts = texts(rng, 4096)
	return p, nil
}

// channelBounds returns the cumulative shares of channels whose sizes
// fall like (rank+q)^-a, Zipf-like, with a and q chosen so that the
// largest channel has 10 % of the messages and the median channel about
// half the mean size. With 10 channels or fewer, 10 % cannot be the
// largest share; the sizes then fall like 1/rank.
func channelBounds(channels int) []float64 {
	weights := func(a, q float64) []float64 {
		w := make([]float64, channels)
		sum := 0.0
		for k := range w {
			w[k] = math.Pow(float64(k+1)+q, -a)
			sum += w[k]
		}
		for k := range w {
			w[k] /= sum
		}
		return w
	}
	best := weights(1, 0)
	if channels > 10 {
		mean, bestMiss := 1/float64(channels), math.Inf(1)
		first := func(a, q float64) float64 { // the largest share
			sum := 0.0
			for k := 1; k <= channels; k++ {
				sum += math.Pow(float64(k)+q, -a)
			}
			return math.Pow(1+q, -a) / sum
		}
		for a := 0.2; a <= 3; a += 0.05 {
			if first(a, 0) < 0.1 {
				continue // flatter than asked even with q = 0
			}
			// The largest share falls as q grows: find q for 10 %.
			lo, hi := 0.0, 1e6
			for range 45 {
				if q := (lo + hi) / 2; first(a, q) > 0.1 {
					lo = q
				} else {
					hi = q
				}
			}
			w := weights(a, lo)
			if miss := math.Abs(w[(channels-1)/2]/mean - 0.5); miss < bestMiss {
				best, bestMiss = w, miss
			}
		}
	}
	bounds := make([]float64, channels)
	for k := 1; k < channels; k++ {
		bounds[k] = bounds[k-1] + best[k-1]
	}
	return bounds
}

// channelName is the name of the channel of rank k (1 is the largest):
// the largest is "default", which GET /messages reads, and the others
// room-1, room-2 …, as in loadtest/mixed.js.
const channelNameSQL = `case when %[1]s = 1 then 'default' else 'room-' || (%[1]s - 1) end`

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// coprimeNear returns the first number from near up that is coprime with
// n (1 when n is 1).
func coprimeNear(n, near int64) int64 {
	if n <= 1 {
		return 1
	}
	for s := max(1, near%n); ; s++ {
		if gcd(s, n) == 1 {
			return s
		}
	}
}

var (
	openers = []string{"", "", "", "ok ", "so ", "hey, ", "lol ", "honestly ", "wait, ", "fwiw ", "+1, ", "btw "}
	words   = strings.Fields(`the a this that it we you they i our my your deploy build release test tests
		review branch merge fix bug crash log logs metrics dashboard alert page pager latency error errors
		timeout retry cache redis postgres query index migration schema rollout rollback canary traffic
		load spike graph chart meeting standup lunch coffee weekend friday monday tomorrow today tonight
		later soon now again still already just really pretty very quite looks seems works broke broken
		green red flaky slow fast faster better worse great nice cool weird strange odd thanks sorry
		agree disagree think guess know see saw check checked ping pinged ship shipped land landed
		revert reverted update updated push pushed open opened close closed ticket doc docs notes plan
		idea question answer reason problem change thing stuff bit lot more less all some none every
		is are was were be been has have had will would can could should might must do does did not`)
	closers = []string{".", ".", ".", "!", "?", "", " :)", " 🎉", " 👍", "...", " 🙏", " — thoughts?"}
)

// texts returns n plausible chat lines: mostly short, a few long.
func texts(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		length := 2 + rng.IntN(10)
		if rng.IntN(10) == 0 {
			length = 15 + rng.IntN(60)
		}
		var b strings.Builder
		b.WriteString(openers[rng.IntN(len(openers))])
		for w := range length {
			if w > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString(closers[rng.IntN(len(closers))])
		s := b.String()
		out[i] = strings.ToUpper(s[:1]) + s[1:]
	}
	return out
}

// SQL building blocks. Every random choice is a hash of the row's index
// (hashint8extended, seeded), so a seed is the same however PostgreSQL
// runs the statement.

// hashSQL is a non-negative 63-bit hash of the expression x, which must
// fit in an int4 (a message's index) for distinct values to hash apart:
// hashint8extended folds a bigint into 32 bits first.
func (p *plan) hashSQL(x string, tag int) string {
	return fmt.Sprintf("(hashint8extended(%s, %d) & 9223372036854775807)", x, p.Seed*64+int64(tag))
}

// uniformSQL is a float in [0, 1) from the hash of x.
func (p *plan) uniformSQL(x string, tag int) string {
	return fmt.Sprintf("((%s >> 11)::float8 / 4503599627370496.0)", p.hashSQL(x, tag))
}

// uuid7SQL is a UUIDv7 of the unix milliseconds ms, as uuid.NewV7 makes
// them (version 7, RFC 4122 variant), its other 74 bits from the hashes
// r1 and r2.
func uuid7SQL(ms, r1, r2 string) string {
	return fmt.Sprintf(`(lpad(to_hex(%[1]s), 12, '0') || '7' || lpad(to_hex(%[2]s %% 4096), 3, '0')
		|| to_hex(8 + (%[2]s / 4096) %% 4) || lpad(to_hex(%[3]s %% 1152921504606846976), 15, '0'))::uuid`, ms, r1, r2)
}

// msSQL turns unix milliseconds into a timestamptz, exactly.
func msSQL(ms string) string {
	return fmt.Sprintf("(timestamptz 'epoch' + (%s) * interval '1 millisecond')", ms)
}

// messageMsSQL is the creation time of message i, in unix milliseconds:
// message i is in the i-th step of the span, at a random point of it, so
// ids and times rise with i.
func (p *plan) messageMsSQL(i string) string {
	start := p.end - p.step*int64(p.Messages+1)
	return fmt.Sprintf("(%d + (%s)::bigint * %d + %s %% %d)", start, i, p.step, p.hashSQL(i, 1), p.step)
}

// messageIDSQL is the id of message i: a UUIDv7 of its creation time.
func (p *plan) messageIDSQL(i string) string {
	return uuid7SQL(p.messageMsSQL(i), p.hashSQL(i, 2), p.hashSQL(i, 3))
}

// insertMessages inserts the messages, without their views. The texts
// come from a temporary table, seed_texts: a subscript of a text array
// walks the array, which for thousands of texts costs more than the rest
// of the row.
func (p *plan) insertMessages(ctx context.Context, conn *pgx.Conn) (int64, error) {
	if _, err := conn.Exec(ctx, `create temporary table seed_texts (k integer primary key, text text not null) on commit drop`); err != nil {
		return 0, fmt.Errorf("create seed_texts: %w", err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"seed_texts"}, []string{"k", "text"},
		pgx.CopyFromSlice(len(p.texts), func(i int) ([]any, error) { return []any{int32(i), p.texts[i]}, nil })); err != nil {
		return 0, fmt.Errorf("copy seed_texts: %w", err)
	}
	sql := fmt.Sprintf(`
		insert into messages (id, channel_id, text, user_id, created_at)
		select %s, %s, t.text, 'user-' || (%s %% $1), %s
		from generate_series(0, $2 - 1) i
		join seed_texts t on t.k = %s %% $3`,
		p.messageIDSQL("i"),
		fmt.Sprintf(channelNameSQL, fmt.Sprintf("width_bucket(%s, $4::float8[])", p.uniformSQL("i", 4))),
		p.hashSQL("i", 6), msSQL(p.messageMsSQL("i")), p.hashSQL("i", 5))
	tag, err := conn.Exec(ctx, sql, p.Users, p.Messages, len(p.texts), p.channelBounds)
	if err != nil {
		return 0, fmt.Errorf("insert messages: %w", err)
	}
	return tag.RowsAffected(), nil
}

// loadCounts copies the reactions per message into a temporary table,
// seed_counts(i, n, id, ms, h), in message order, with each message's id,
// time and hash, computed once a message rather than once a reaction.
func (p *plan) loadCounts(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `create temporary table seed_counts (i integer not null, n integer not null, id uuid, ms bigint, h bigint) on commit drop`); err != nil {
		return fmt.Errorf("create seed_counts: %w", err)
	}
	var rows [][]any
	for i, n := range p.counts {
		if n > 0 {
			rows = append(rows, []any{int32(i), n})
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"seed_counts"}, []string{"i", "n"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy seed_counts: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`update seed_counts set id = %s, ms = %s, h = %s`, p.messageIDSQL("i"), p.messageMsSQL("i"), p.hashSQL("i", 13))); err != nil {
		return fmt.Errorf("message ids of seed_counts: %w", err)
	}
	return nil
}

// insertReactions inserts the reactions of seed_counts, already projected:
// the caller keeps the trigger that records each change in
// reaction_changes off meanwhile, so no change is pending. The j-th
// reaction of message i has the key offset(i) + j*stride mod keys, all
// distinct for j < keys: the key's range names the type, its place in the
// range the user. Its time is after the message's, sooner rather than
// later; its id is a UUIDv7 of that time. Scores are mostly 1.
func (p *plan) insertReactions(ctx context.Context, conn *pgx.Conn) (int64, error) {
	tag, err := conn.Exec(ctx, p.reactionsSQL(), p.typeStart, reactionTypes)
	if err != nil {
		return 0, fmt.Errorf("insert reactions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// reactionsSQL is the statement of insertReactions; its parameters are
// typeStart and reactionTypes.
func (p *plan) reactionsSQL() string {
	// The hashes of a reaction hash j with its message's hash as the
	// seed: hashint8extended folds a bigint into 32 bits before hashing
	// (so that it hashes like an int4), so a hash of one bigint made of i
	// and j would repeat within millions of reactions.
	h := func(tag int) string {
		return fmt.Sprintf("(hashint8extended(j, c.h - %d) & 9223372036854775807)", tag)
	}
	key := fmt.Sprintf("((%s %% %d + j::bigint * %d) %% %d)", p.hashSQL("c.i", 7), p.keys, p.stride, p.keys)
	return fmt.Sprintf(`
		insert into reactions (id, message_id, user_id, type, score, created_at, updated_at, version)
		select %s, x.message_id, 'user-' || (x.key - ($1::bigint[])[x.t]), ($2::text[])[x.t], x.score, %s, %s, 1
		from (
			select c.id as message_id, %s as key, width_bucket(%s, $1::bigint[]) as t,
				c.ms + 1 + floor((%d - c.ms - 1) * pow(%s, 3))::bigint as ms,
				case when %s %% 100 < 85 then 1
					when %s %% 100 < 95 then 2 + %s %% 4
					else 6 + %s %% 45 end as score,
				%s as r1, %s as r2
			from seed_counts c
			cross join generate_series(0, c.n - 1) j
			offset 0 -- each column once a row, not once a use
		) x`,
		uuid7SQL("x.ms", "x.r1", "x.r2"), msSQL("x.ms"), msSQL("x.ms"),
		key, key, p.end, fmt.Sprintf("((%s >> 11)::float8 / 4503599627370496.0)", h(10)),
		h(11), h(11), h(12), h(12), h(8), h(9))
}

// summary is a line on the plan, for the log.
func (p *plan) summary() string {
	sizes := make([]string, 0, 3)
	for _, k := range []int{1, 2, (len(p.channelBounds) + 1) / 2} {
		if k < 1 || k > len(p.channelBounds) {
			continue
		}
		hi := 1.0
		if k < len(p.channelBounds) {
			hi = p.channelBounds[k]
		}
		sizes = append(sizes, strconv.FormatFloat(100*(hi-p.channelBounds[k-1]), 'f', 2, 64)+"%")
	}
	return fmt.Sprintf("%d messages in %d channels (largest, second, median: %s), %d reactions, %d users, %d (user, type) keys a message, a message every %d ms",
		p.Messages, p.Channels, strings.Join(sizes, ", "), p.Reactions, p.Users, p.keys, p.step)
}

// withoutIndexes runs load with the indexes of table dropped, then
// creates them again from their own definitions (pg_get_indexdef, and
// pg_get_constraintdef for those of a primary key or unique constraint),
// so the table ends with exactly the indexes the migrations made. Building
// an index from sorted rows is much faster than inserting millions of
// rows, in random order, into an index that does not fit in memory. The
// table must be empty, and no foreign key may reference it.
func withoutIndexes(ctx context.Context, conn *pgx.Conn, table string, load func() error) (rebuilt []string, err error) {
	rows, err := conn.Query(ctx, `
		select i.indexrelid::regclass::text, c.conname,
			coalesce('alter table ' || i.indrelid::regclass::text || ' add constraint ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid),
				pg_get_indexdef(i.indexrelid))
		from pg_index i
		left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid and c.contype in ('p', 'u')
		where i.indrelid = $1::regclass
		order by i.indexrelid`, table)
	if err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", table, err)
	}
	type index struct{ name, constraint, create string }
	var indexes []index
	for rows.Next() {
		var ix index
		var constraint *string
		if err := rows.Scan(&ix.name, &constraint, &ix.create); err != nil {
			return nil, err
		}
		if constraint != nil {
			ix.constraint = *constraint
		}
		indexes = append(indexes, ix)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", table, err)
	}
	for _, ix := range indexes {
		drop := "drop index " + ix.name
		if ix.constraint != "" {
			drop = "alter table " + table + " drop constraint " + pgx.Identifier{ix.constraint}.Sanitize()
		}
		if _, err := conn.Exec(ctx, drop); err != nil {
			return nil, fmt.Errorf("%s: %w", drop, err)
		}
	}
	if err := load(); err != nil {
		return nil, err
	}
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, ix.create); err != nil {
			return nil, fmt.Errorf("%s: %w", ix.create, err)
		}
		rebuilt = append(rebuilt, ix.name)
	}
	return rebuilt, nil
}
