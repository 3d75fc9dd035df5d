package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lib/pq"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is an open Myelin database. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	// write runs every transaction (WithTx). On SQLite it is a single
	// connection, so writers in this process queue here, not in SQLite.
	write *sql.DB
	// read serves queries outside transactions, through cached prepared
	// statements (reader.go), on a pool of query_only connections on
	// SQLite, on the same pool as write on PostgreSQL.
	read reader
	// writeStmts caches the statements transactions read with: those of
	// write's pool (the same cache as read's on PostgreSQL).
	writeStmts *stmtCache
	// revocations and accountData are told of revoked access tokens and
	// account data changes after each commit (notices.go).
	revocations listeners[string]
	accountData listeners[AccountDataChange]
}

// Open connects to the database named by dsn and brings its schema up to
// date. dsn is "sqlite:PATH" (the file is created if missing) or a
// PostgreSQL URL, "postgres://user:password@host:5432/dbname?sslmode=...".
// Every error names the setting and says what to check.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		db, err = openSQLite(ctx, dsn, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(ctx, dsn)
	default:
		return nil, settingError(dsn, "unsupported database", nil,
			`use "sqlite:PATH" or "postgres://user:password@host:5432/dbname"`)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx, migrationFiles); err != nil {
		db.Close()
		return nil, settingError(dsn, "cannot update the schema", err, "")
	}
	return db, nil
}

// Dialect reports which kind of database db is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes every connection. Transactions still running fail.
func (db *DB) Close() error {
	db.read.close()
	if db.writeStmts != db.read.stmtCache {
		db.writeStmts.close()
	}
	err := db.write.Close()
	if db.read.pool != db.write {
		err = errors.Join(err, db.read.pool.Close())
	}
	return err
}

// sqliteBusyTimeoutMS is SQLite's busy_timeout; doc.go explains the choice.
// A variable only so that tests can shorten it.
var sqliteBusyTimeoutMS = 5000

func sqliteDSN(path string, reader bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "temp_store(MEMORY)")
		q.Set("_txlock", "immediate")
	}
	// A file: URI with an escaped path, so that a path containing '?',
	// '#' or '%' is not mistaken for parameters.
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// sqliteReaders is the size of the reader pool: enough to keep every core
// busy, and a few more so that readers waiting on I/O don't queue.
func sqliteReaders() int { return max(4, runtime.GOMAXPROCS(0)) }

// pingSQLite opens db's first connection, retrying while the file is busy.
// The connection's pragmas run as it opens, and switching a new file to WAL
// can answer SQLITE_BUSY at once, without waiting for busy_timeout, while
// another process opens the same file; so several processes starting
// together (a restart of a cluster's workers) would otherwise fail at random.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(time.Duration(sqliteBusyTimeoutMS) * time.Millisecond)
	for {
		err := db.PingContext(ctx)
		if err == nil || !SQLite.retryable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5+rand.IntN(20)) * time.Millisecond):
		}
	}
}

func openSQLite(ctx context.Context, dsn, path string) (*DB, error) {
	const hint = "does the directory exist and is it writable?"
	if path == "" {
		return nil, settingError(dsn, "no file path", nil, `use e.g. "sqlite:/var/lib/myelin/myelin.db"`)
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, settingError(dsn, "not a file path", nil,
			`give a plain file path, e.g. "sqlite:/var/lib/myelin/myelin.db"`)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, settingError(dsn, "bad file path", err, "")
	}
	// The writer goes first: its first connection switches the file to WAL,
	// which the readers then find already set.
	write, err := sql.Open("sqlite", sqliteDSN(abs, false))
	if err != nil {
		return nil, settingError(dsn, "cannot open", err, hint)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	if err := pingSQLite(ctx, write); err != nil {
		write.Close()
		return nil, settingError(dsn, "cannot open", err, hint)
	}
	read, err := sql.Open("sqlite", sqliteDSN(abs, true))
	if err != nil {
		write.Close()
		return nil, settingError(dsn, "cannot open", err, hint)
	}
	read.SetMaxOpenConns(sqliteReaders())
	read.SetMaxIdleConns(sqliteReaders())
	if err := pingSQLite(ctx, read); err != nil {
		write.Close()
		read.Close()
		return nil, settingError(dsn, "cannot open", err, hint)
	}
	return &DB{dialect: SQLite, write: write, writeStmts: newStmtCache(write), read: reader{newStmtCache(read)}}, nil
}

// PostgreSQL pool limits: room for several processes within PostgreSQL's
// default max_connections of 100.
const (
	pgMaxOpen = 20
	pgMaxIdle = 10
)

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, settingError(dsn, "not a valid PostgreSQL URL", err, "")
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(pgMaxOpen)
	db.SetMaxIdleConns(pgMaxIdle)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, settingError(dsn, "cannot connect", err,
			"is PostgreSQL running, and do the user, password and database exist?")
	}
	stmts := newStmtCache(db)
	return &DB{dialect: PostgreSQL, write: db, writeStmts: stmts, read: reader{stmts}}, nil
}

// settingError builds the one-line error Open returns: which setting, what
// is wrong, the cause, and what to check.
func settingError(dsn, problem string, cause error, hint string) error {
	msg := fmt.Sprintf("database %q: %s", redact(dsn), problem)
	switch {
	case strings.HasSuffix(hint, "?"):
		hint += " check --database"
	case hint != "":
		hint += "; check --database"
	default:
		hint = "check --database"
	}
	if cause != nil {
		return fmt.Errorf("%s: %w (%s)", msg, cause, hint)
	}
	return fmt.Errorf("%s (%s)", msg, hint)
}

// redact hides the password of a PostgreSQL URL, in its user part or in a
// password= parameter, so that errors and logs can show the rest.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "sqlite" || u.Opaque != "" {
		if err != nil && strings.Contains(dsn, "@") {
			return "(unparsable URL, not shown because it may hold a password)"
		}
		return dsn
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
