package storage

// Test-only access to internals, for the external storage_test package
// (which must be external to use storagetest).

import (
	"context"
	"io/fs"
	"strings"
)

// VisibilityEventsQuery is SyncVisibilityEvents's statement.
const VisibilityEventsQuery = `SELECT ` + eventColumns + eventFrom + visibilityEventsWhere

// VisibilityEventsOfRoomsQuery is VisibilityEventsOfRooms's statement for
// n rooms.
func VisibilityEventsOfRoomsQuery(n int) string {
	return `SELECT ` + eventColumns + eventFrom + visibilityEventsOfRoomsWhere(n)
}

// CurrentStateEventsQuery is CurrentStateEvents's statement for n keys.
func CurrentStateEventsQuery(n int) string {
	return `SELECT ` + eventColumns + eventFrom + currentStateEventsWhere(n)
}

// SyncStateWithoutMembersQuery is SyncCurrentState's statement for the
// state other than member events.
const SyncStateWithoutMembersQuery = `SELECT ` + eventColumns + eventFrom + syncStateWithoutMembersWhere

// SyncMembersQuery is SyncCurrentState's statement for the member events
// of n users.
func SyncMembersQuery(n int) string {
	return `SELECT ` + eventColumns + eventFrom + syncMembersWhere(n)
}

// SyncStateEventsQuery and SyncE2EEQuery are the statements of
// SyncStateEvents and SyncE2EE.
const (
	SyncStateEventsQuery = `SELECT ` + eventColumns + eventFrom + syncStateEventsWhere
	SyncE2EEQuery        = syncE2EEQuery
)

// RelationsPageQuery returns RelationsPage's statement and arguments.
var RelationsPageQuery = relationsPageQuery

// OpenRoomStateQuery is OpenRoomStateJSON's statement.
const OpenRoomStateQuery = openRoomStateQuery

// NotificationsQuery is Notifications's statement.
var NotificationsQuery = notificationsQuery

// ClearSupersededStatements are ClearSuperseded's statements.
var ClearSupersededStatements = clearSupersededStatements

var (
	LoadMigrations = loadMigrations
	Redact         = redact
	SQLiteReaders  = sqliteReaders
)

func Retryable(d Dialect, err error) bool { return d.retryable(err) }
func DDL(d Dialect, text string) string   { return d.ddl(text) }

// SetSQLiteBusyTimeout changes busy_timeout for databases opened afterwards.
func SetSQLiteBusyTimeout(ms int) (restore func()) {
	old := sqliteBusyTimeoutMS
	sqliteBusyTimeoutMS = ms
	return func() { sqliteBusyTimeoutMS = old }
}

// Migrate runs the migrations of fsys (a migrations/ directory) on db.
func (db *DB) Migrate(ctx context.Context, fsys fs.FS) error { return db.migrate(ctx, fsys) }

// Exec runs a statement in tx and returns the number of rows it affected.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueryValue scans the single value query returns, in tx.
func (tx *Tx) QueryValue(ctx context.Context, dst any, query string, args ...any) error {
	return tx.tx.QueryRowContext(ctx, query, args...).Scan(dst)
}

// QueryValue scans the single value query returns, on the reader pool
// (reader) or the writer connection.
func (db *DB) QueryValue(ctx context.Context, reader bool, dst any, query string, args ...any) error {
	var h queryer = db.write
	if reader {
		h = db.read
	}
	return h.QueryRowContext(ctx, query, args...).Scan(dst)
}

// MigrationFiles is the embedded schema.
var MigrationFiles = migrationFiles

// QueryPlan returns SQLite's plan for query (EXPLAIN QUERY PLAN), a line
// per step.
func (db *DB) QueryPlan(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		plan.WriteString(detail + "\n")
	}
	return plan.String(), rows.Err()
}
