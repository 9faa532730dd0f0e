package postgres_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"messageapi/postgres"
)

// TestCheapChecksAcceptWhatTheOldOnesDid: migration 009 rewrote the checks
// of user ids, reaction types and channel ids without bounded repetition;
// each accepts exactly the values the constraint it replaced accepted.
// Both schemas' own constraints judge every value, by a real insert.
func TestCheapChecksAcceptWhatTheOldOnesDid(t *testing.T) {
	t.Parallel()
	old, current := migratedTo(t, 8), migratedTo(t, 9)

	values := []string{"", "a", "A", "z", "Z", "0", "9", "_", ".", "@", "-", "+", "a b", "a\n", "\na", "a\t",
		"é", "Ａ", "a$", "^a", "[a]", "a/b", "a,b", "like", "thumbs_up", "+1", "-1", "Like", "a.b@c-d_e"}
	for _, n := range []int{29, 30, 31, 63, 64, 65, 127, 128, 129} {
		values = append(values, strings.Repeat("a", n), strings.Repeat("a", n-1)+" ", strings.Repeat("Z9", n)[:n])
	}
	alphabet := []rune("aZ09_.@-+ \n$é")
	rng := rand.New(rand.NewPCG(9, 9))
	for range 400 {
		r := make([]rune, rng.IntN(140))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(4) > 0 { // mostly valid characters, so long valid values occur
				r[i] = alphabet[rng.IntN(4)]
			}
		}
		values = append(values, string(r))
	}

	inserts := map[string]string{
		"reactions.user_id": `insert into reactions (id, message_id, user_id, type, score, created_at, updated_at)
			values (gen_random_uuid(), gen_random_uuid(), $1, 'like', 1, now(), now())`,
		"reactions.type": `insert into reactions (id, message_id, user_id, type, score, created_at, updated_at)
			values (gen_random_uuid(), gen_random_uuid(), 'u', $1, 1, now(), now())`,
		"messages.user_id": `insert into messages (id, text, user_id, created_at)
			values (gen_random_uuid(), 't', $1, now())`,
		"messages.channel_id": `insert into messages (id, text, user_id, created_at, channel_id)
			values (gen_random_uuid(), 't', 'u', now(), $1)`,
	}
	for column, insert := range inserts {
		was, now := accepted(t, old, insert, values), accepted(t, current, insert, values)
		taken := 0
		for i, v := range values {
			if was[i] != now[i] {
				t.Errorf("%s %q: accepted %v before migration 009, %v after", column, v, was[i], now[i])
			}
			if now[i] {
				taken++
			}
		}
		if taken == 0 || taken == len(values) {
			t.Errorf("%s: %d of %d values accepted; the values test nothing", column, taken, len(values))
		}
	}
}

// accepted runs insert with each value, in a transaction it rolls back,
// and reports which values its check constraints let through.
func accepted(t *testing.T, db *postgres.DB, insert string, values []string) []bool {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `
		create function pg_temp.accepts(stmt text, v text) returns boolean language plpgsql as $$
		begin
			execute stmt using v;
			return true;
		exception when check_violation then
			return false;
		end $$`); err != nil {
		t.Fatal(err)
	}
	var out []bool
	if err := tx.QueryRow(ctx, `select array_agg(pg_temp.accepts($1, v) order by i) from unnest($2::text[]) with ordinality as u(v, i)`,
		insert, values).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPutReactionOfTheBuildBeforeMigration10: migration 010 recreated
// put_reaction with the message's channel as one more output. The
// statement of the build before it, which probes the channel itself and
// names the columns it reads, still works against the new function, on a
// connection that prepared it before the migration too, so that build
// runs on during a rolling upgrade.
func TestPutReactionOfTheBuildBeforeMigration10(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migratedTo(t, 9)
	const m = "01a21b77-d171-76be-88ab-728585d7e810"
	if _, err := db.Pool().Exec(ctx, `insert into messages (id, text, user_id, created_at, channel_id)
		values ($1, 't', 'u', now(), 'general')`, m); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool().Acquire(ctx) // the old build's connection, kept across the migration
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	const before = `
		select status, coalesce(id::text, ''), coalesce(version, 0),
			coalesce((select m.channel_id from messages m where m.id = $2), '')
		from put_reaction($1, $2, $3, $4, $5, $6, $7, $8)`
	put := func(id, user string) {
		t.Helper()
		var status, got, channel string
		var version int64
		if err := conn.QueryRow(ctx, before, id, m, user, "like", 1, time.Now(), 25, false).
			Scan(&status, &got, &version, &channel); err != nil {
			t.Fatal(err)
		}
		if status != "created" || got != id || version != 1 || channel != "general" {
			t.Errorf("the statement of the build before: %s %s version %d in %q", status, got, version, channel)
		}
	}
	put("01a21b77-d171-76be-88ab-000000000009", "a")
	if err := db.MigrateTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var returnsChannel bool
	if err := conn.QueryRow(ctx, `select 'channel_id' = any(proargnames) from pg_proc
		where proname = 'put_reaction' and pronamespace = current_schema()::regnamespace`).Scan(&returnsChannel); err != nil || !returnsChannel {
		t.Fatalf("put_reaction after migration 010 returns the channel: %v, %v", returnsChannel, err)
	}
	put("01a21b77-d171-76be-88ab-000000000010", "b")
}
