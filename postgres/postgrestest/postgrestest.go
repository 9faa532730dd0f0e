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
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"messageapi/internal/servicetest"
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
	servicetest.Require(tb)
	schema, u := SchemaURL(tb)
	if err := exec(tb, "create schema "+schema); err != nil {
		tb.Fatalf("postgrestest: %v", err)
	}
	return u
}

// SchemaURL returns the name of a schema of the test's own that does not
// exist yet, and a database URL whose search_path is that schema only. The
// schema, once something creates it, is dropped when the test ends.
func SchemaURL(tb testing.TB) (schema, databaseURL string) {
	tb.Helper()
	servicetest.Require(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema = "test_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		if err := exec(tb, "drop schema if exists "+schema+" cascade"); err != nil {
			tb.Errorf("postgrestest: %v", err)
		}
	})
	u, err := url.Parse(BaseURL())
	if err != nil {
		tb.Fatalf("postgrestest: parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return schema, u.String()
}

// exec runs one statement on the test database.
func exec(tb testing.TB, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, BaseURL())
	if err != nil {
		return fmt.Errorf("cannot reach the test database (set TEST_DATABASE_URL, or run `make services`): %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
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
	servicetest.Require(tb)
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
