// Package postgrestest gives each test its own migrated PostgreSQL schema,
// so tests run in parallel against one real server without sharing state.
//
// The server comes from TEST_DATABASE_URL (default: the message-api-test
// database on localhost). A server that cannot be reached fails the test:
// it is never skipped.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi/postgres"
)

// DefaultURL is the database tests use when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://message-api:message-api@localhost:5432/message-api-test?sslmode=disable"

// BaseURL returns the URL of the test database.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewSchema creates an empty schema that is dropped when the test ends and
// returns a database URL whose search_path is that schema only, so a query
// that names another schema's table fails loudly instead of passing.
func NewSchema(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, BaseURL())
	if err != nil {
		tb.Fatalf("postgrestest: cannot reach the test database (set TEST_DATABASE_URL, or run `make services`): %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "create schema "+schema); err != nil {
		tb.Fatalf("postgrestest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, BaseURL())
		if err != nil {
			tb.Errorf("postgrestest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop schema "+schema+" cascade"); err != nil {
			tb.Errorf("postgrestest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(BaseURL())
	if err != nil {
		tb.Fatalf("postgrestest: parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// NewDB returns a DB on a new, migrated schema of its own, closed when the
// test ends.
func NewDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	return Open(tb, NewSchema(tb), postgres.Config{})
}

// Open returns a migrated DB for url with cfg's other settings, closed when
// the test ends.
func Open(tb testing.TB, url string, cfg postgres.Config) *postgres.DB {
	tb.Helper()
	cfg.URL = url
	db, err := postgres.Open(cfg)
	if err != nil {
		tb.Fatalf("postgrestest: open: %v", err)
	}
	tb.Cleanup(db.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("postgrestest: migrate: %v", err)
	}
	return db
}
