package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/jackc/tern/v2/migrate"

	"messageapi"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is left unqualified on purpose: it lives in the first schema
// of the search_path, like every table of the migrations, so a database URL
// with search_path=x migrates schema x independently (tests rely on it).
const versionTable = "schema_version"

// DefaultTimeout is the query and connect timeout when none is given.
const DefaultTimeout = 2 * time.Second

// Config configures a DB.
type Config struct {
	// URL is a PostgreSQL connection string. A search_path parameter in it
	// selects the schema that holds the tables.
	URL string
	// MaxConns caps the pool; 0 keeps pgxpool's default.
	MaxConns int32
	// QueryTimeout bounds every call a store makes, including the wait for a
	// connection. 0 means DefaultTimeout.
	QueryTimeout time.Duration
	// ConnectTimeout bounds establishing one connection. 0 means
	// DefaultTimeout.
	ConnectTimeout time.Duration
	// LockTimeout and IdleInTxTimeout bound, on the server, how long a
	// session waits for a lock and how long it may sit idle inside a
	// transaction (0: no bound). The server ends a transaction whose client
	// stopped (frozen, or gone behind a half-open connection) after
	// IdleInTxTimeout, so its locks are not held for hours.
	LockTimeout     time.Duration
	IdleInTxTimeout time.Duration
	// Name is the sessions' application_name, shown in pg_stat_activity.
	Name string
	// Tracer, when set, sees every query the pool runs (the plan guard
	// test reads their plans).
	Tracer pgx.QueryTracer
}

// Dead peers are found within seconds by TCP keepalives, on the server
// (runtime parameters) and on the client (the dialer): about idle + count
// * interval, and tcp_user_timeout for data that is never acknowledged.
const (
	keepAliveIdle     = 5 * time.Second
	keepAliveInterval = 2 * time.Second
	keepAliveCount    = 3
	userTimeout       = 10 * time.Second
)

// sessionParams are the runtime parameters of every session: the bounds
// the server enforces whatever the client does.
func sessionParams(cfg Config, queryTimeout time.Duration) map[string]string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	p := map[string]string{
		// The client gives up at queryTimeout; the server stops the
		// statement soon after, should the client be gone.
		"statement_timeout":       ms(queryTimeout + time.Second),
		"tcp_keepalives_idle":     strconv.Itoa(int(keepAliveIdle.Seconds())),
		"tcp_keepalives_interval": strconv.Itoa(int(keepAliveInterval.Seconds())),
		"tcp_keepalives_count":    strconv.Itoa(keepAliveCount),
		"tcp_user_timeout":        ms(userTimeout),
	}
	if cfg.LockTimeout > 0 {
		p["lock_timeout"] = ms(cfg.LockTimeout)
	}
	if cfg.IdleInTxTimeout > 0 {
		p["idle_in_transaction_session_timeout"] = ms(cfg.IdleInTxTimeout)
	}
	if cfg.Name != "" {
		p["application_name"] = cfg.Name
	}
	return p
}

// DB is a pool of connections to PostgreSQL. Creating it does not connect:
// the pool dials on demand, so a process starts while PostgreSQL is down and
// recovers without a restart when it returns.
type DB struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// Open returns a DB for cfg. It fails only on invalid configuration.
func Open(cfg Config) (*DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// The parse error may echo the URL, password included; keep it out.
		return nil, errors.New("invalid database url")
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	timeout := cmp.Or(cfg.QueryTimeout, DefaultTimeout)
	cc := pc.ConnConfig
	cc.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, DefaultTimeout)
	for k, v := range sessionParams(cfg, timeout) {
		if _, set := cc.RuntimeParams[k]; !set { // the URL's own settings win
			cc.RuntimeParams[k] = v
		}
	}
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
	}}
	cc.DialFunc = dialer.DialContext
	if cfg.Tracer != nil {
		cc.Tracer = cfg.Tracer
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return &DB{pool: pool, timeout: timeout}, nil
}

// Pool returns the underlying pool, for metrics and tests.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that PostgreSQL answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	return translate(db.pool.Ping(ctx), "ping")
}

// Migrate brings the schema to the latest version. Concurrent callers
// (several API and worker processes starting together) are serialised by
// tern's advisory lock, and each migration runs in its own transaction.
func (db *DB) Migrate(ctx context.Context) error {
	return db.MigrateTo(ctx, -1)
}

// MigrateTo migrates up or down to version target, or to the latest when
// it is -1: for tests of a migration's upgrade of existing data, and to
// run an earlier build on a database made by this one (loadtest/seed).
func (db *DB) MigrateTo(ctx context.Context, target int32) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return translate(err, "migrate: acquire")
	}
	defer conn.Release()
	// A migration may rewrite a large table, and waits for the migration
	// lock while another process migrates: the session bounds meant for
	// requests do not apply; ctx bounds it. The pool's bounds come back
	// before the connection does.
	if _, err := conn.Exec(ctx, "set statement_timeout = 0; set lock_timeout = 0"); err != nil {
		return translate(err, "migrate: session")
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "reset statement_timeout; reset lock_timeout"); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops a closed connection
		}
	}()
	if err := ensureSchema(ctx, conn.Conn()); err != nil {
		return err
	}
	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return translate(err, "migrate: version table")
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if target < 0 {
		err = m.Migrate(ctx)
	} else {
		err = m.MigrateTo(ctx, target)
	}
	return translate(err, "migrate")
}

// ensureSchema creates the first schema of the connection's search_path
// when it does not exist, so a URL naming a new schema works at once
// instead of failing every migration with "no schema has been selected".
// Without the privilege to create it, the error says which schema.
func ensureSchema(ctx context.Context, conn *pgx.Conn) error {
	var first string
	var exists bool
	err := conn.QueryRow(ctx, `
		with s as (select trim(both ' "' from split_part(current_setting('search_path'), ',', 1)) as name)
		select name, exists (select from pg_namespace where nspname = name) from s`).Scan(&first, &exists)
	if err != nil {
		return translate(err, "migrate: read search_path")
	}
	if exists || first == "$user" {
		return nil
	}
	if first == "" {
		return errors.New("migrate: the search_path names no schema to migrate into")
	}
	_, err = conn.Exec(ctx, "create schema if not exists "+pgx.Identifier{first}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
		// Another process (the API and the worker start together)
		// created it between the check and the create; "if not exists"
		// does not cover that race.
		return nil
	}
	if err != nil {
		if messageapi.ErrorCode(translate(err, "")) == messageapi.EUNAVAILABLE {
			return translate(err, "migrate: create schema")
		}
		return fmt.Errorf("migrate: schema %q of the search_path does not exist and cannot be created: %w", first, err)
	}
	return nil
}

// Autovacuum reports whether the server runs autovacuum. The service's
// tables churn (reaction tombstones, reaction_changes, views rewritten by
// every fold): without it their dead rows are never reclaimed, and tables
// and indexes grow without bound.
func (db *DB) Autovacuum(ctx context.Context) (bool, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	var on bool
	if err := db.pool.QueryRow(ctx, `select current_setting('autovacuum')::bool`).Scan(&on); err != nil {
		return false, translate(err, "read autovacuum")
	}
	return on, nil
}

func (db *DB) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.timeout)
}

// translate turns a driver error into a messageapi error, adding what was
// being done for the logs. Only errors that mean "PostgreSQL is unreachable,
// overloaded or too slow" become unavailable (503, retryable); anything else
// is internal, because it is a bug rather than an outage.
func translate(err error, op string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, context.Canceled):
		// The caller gave up; say so rather than blame the database.
		return fmt.Errorf("%s: %w", op, err)
	case errors.As(err, &pgErr):
		switch code := pgErr.Code; {
		case code == "23505":
			return &messageapi.Error{Code: messageapi.ECONFLICT, Message: "already exists", Err: fmt.Errorf("%s: %w", op, err)}
		case code == "23503":
			return &messageapi.Error{Code: messageapi.ENOTFOUND, Message: "message not found", Err: fmt.Errorf("%s: %w", op, err)}
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"),    // insufficient resources
			strings.HasPrefix(code, "57P"),   // shutdown, cannot connect now
			code == "57014",                  // statement timeout
			code == "40001", code == "40P01", // serialization failure, deadlock
			code == "55P03": // lock not available
			return messageapi.Unavailable("database", fmt.Errorf("%s: %w", op, err))
		}
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return messageapi.Unavailable("database", fmt.Errorf("%s: %w", op, err))
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, puddle.ErrClosedPool) {
		return messageapi.Unavailable("database", fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isNoRows reports whether err means the query matched nothing.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
