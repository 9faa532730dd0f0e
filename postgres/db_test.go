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
