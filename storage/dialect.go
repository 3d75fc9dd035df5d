package storage

// The only place where SQLite and PostgreSQL differ: names, DDL rewrites,
// which errors are worth retrying, and how migrations are serialised.
// Everything else, every query included, is shared text.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the kind of database behind a DB.
type Dialect string

const (
	SQLite     Dialect = "sqlite"   // modernc.org/sqlite, "sqlite:PATH"
	PostgreSQL Dialect = "postgres" // github.com/lib/pq, "postgres://..."
)

// sqliteDDL turns the PostgreSQL spellings that SQLite lacks into SQLite's.
// Only migration text passes through it; queries need no rewriting.
var sqliteDDL = strings.NewReplacer(
	// A rowid alias with AUTOINCREMENT never reuses a number, like a sequence.
	"BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT",
	"BYTEA", "BLOB",
	// A table whose rows are small and always found by their primary key
	// is stored as that key's B-tree alone on SQLite (PostgreSQL has no
	// such tables; the marker is a comment to it).
	"/*WITHOUT ROWID*/", "WITHOUT ROWID",
)

// ddl returns migration text as this dialect needs it.
func (d Dialect) ddl(text string) string {
	if d == SQLite {
		return sqliteDDL.Replace(text)
	}
	return text
}

// retryable reports whether err means "try the whole transaction again":
// SQLite's lock was still held when busy_timeout ran out (or a read
// snapshot went stale), or PostgreSQL aborted the transaction for a
// serialization failure or a deadlock.
func (d Dialect) retryable(err error) bool {
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // the primary code, without the extended bits
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	return pq.As(err, "40001", "40P01") != nil // serialization_failure, deadlock_detected
}

// lockMigrations keeps other processes from running migrations on the same
// database until unlock is called. conn must stay open until then.
//
// PostgreSQL: a session advisory lock keyed by the schema (tests run many
// schemas in one database and need not wait for each other). SQLite needs
// nothing here: every migration transaction begins IMMEDIATE, which takes
// the database's write lock, and re-checks schema_migrations inside it.
func (d Dialect) lockMigrations(ctx context.Context, conn *sql.Conn) (unlock func(), err error) {
	if d != PostgreSQL {
		return func() {}, nil
	}
	const key = `$1, hashtext(current_schema())`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`, migrationLockID); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	return func() {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`, migrationLockID)
		if err != nil {
			// The session still holds the lock: make database/sql close this
			// connection rather than return it to the pool, which ends the
			// session and releases the lock.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}

// migrationLockID is the first half of the advisory lock key: arbitrary,
// but fixed so that every myelin process agrees on it.
const migrationLockID = 0x6d79656c // "myel"

// lockRoom keeps other processes from writing to the room roomID until tx
// ends, so that one writer at a time extends a room's DAG.
//
// PostgreSQL: a transaction-level advisory lock on a hash of the schema and
// the room ID (a hash collision only makes two rooms wait for each other).
// SQLite needs nothing: a writing transaction (begun IMMEDIATE) already
// holds the lock of the whole database.
func (d Dialect) lockRoom(ctx context.Context, tx *sql.Tx, roomID string) error {
	if d != PostgreSQL {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ' ' || $1, 0))`, roomID); err != nil {
		return fmt.Errorf("lock room %s: %w", roomID, err)
	}
	return nil
}
