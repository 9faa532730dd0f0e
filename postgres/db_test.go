package postgres_test

import (
	"context"
	"testing"

	"messageapi/postgres"
	"messageapi/postgres/postgrestest"
)

// TestMigrateCreatesTheSchema: a database URL naming a schema that does not
// exist yet migrates into a new schema of that name, instead of retrying
// forever with "no schema has been selected".
func TestMigrateCreatesTheSchema(t *testing.T) {
	t.Parallel()
	schema, url := postgrestest.SchemaURL(t)
	db := postgrestest.Open(t, url, postgres.Config{}) // migrates
	var table string
	err := db.Pool().QueryRow(context.Background(),
		`select table_schema from information_schema.tables where table_name = 'messages' and table_schema = $1`, schema).Scan(&table)
	if err != nil || table != schema {
		t.Fatalf("messages table in schema %q (%v); want it in the new schema %q", table, err, schema)
	}
}

// migratedTo returns a database in a schema of its own, migrated to
// version, for a test of the migrations after it.
func migratedTo(t *testing.T, version int32) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(postgres.Config{URL: postgrestest.NewSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.MigrateTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestReactionGroupsMigration: views made before migration 004 get groups
// holding their counts and sums, with the times of their live reactions.
func TestReactionGroupsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migratedTo(t, 3)
	const m = "01a21b77-d171-76be-88ab-728585d7e80f"
	for _, sql := range []string{
		`insert into messages (id, text, user_id, created_at) values ('` + m + `', 'old', 'u', now())`,
		`insert into reactions (id, message_id, user_id, type, score, created_at, updated_at, projected_version, projected_score) values
			('01a21b77-d171-76be-88ab-000000000001', '` + m + `', 'a', 'like', 2, '2026-11-27T10:01:00.5Z', now(), 1, 2),
			('01a21b77-d171-76be-88ab-000000000002', '` + m + `', 'b', 'like', 3, '2026-11-27T10:02:00.25Z', now(), 1, 3)`,
		`insert into message_views (message_id, reaction_count, reaction_counts, reaction_scores, version)
			values ('` + m + `', 2, '{"like": 2}', '{"like": 5}', 2)`,
	} {
		if _, err := db.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := postgres.NewMessageStore(db).GetMessage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	g := v.ReactionGroups["like"]
	if g.Count != 2 || g.SumScores != 5 || g.FirstReactionAt.String() != "2026-11-27 10:01:00.5 +0000 UTC" ||
		g.LastReactionAt.String() != "2026-11-27 10:02:00.25 +0000 UTC" || v.ReactionCounts["like"] != 2 {
		t.Errorf("migrated view: groups %+v, counts %v", v.ReactionGroups, v.ReactionCounts)
	}
}
