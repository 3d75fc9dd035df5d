package storage

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"
)

// migrationFiles holds the schema as a numbered series of SQL files,
// NNNN_what.sql, applied in order. A released file is never edited: a
// change to the schema is a new file. Each file's text is shared by both
// databases (see doc.go for the SQL subset).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name, for errors and the schema_migrations row
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the migrations/ directory of fsys: every file must be
// named NNNN_what.sql, and the numbers must run 1, 2, 3, ... without gaps,
// so that two branches adding the same number fail loudly.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration // ReadDir sorts by name, so by number
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("migrations/%s: not named NNNN_what.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migrations/%s: expected number %04d (numbers run from 0001 without gaps or repeats)", e.Name(), len(ms)+1)
		}
		text, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(text)})
	}
	return ms, nil
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_ts BIGINT NOT NULL
)`

// migrate applies the migrations of fsys that the database lacks, each in
// its own transaction together with its schema_migrations row, so a
// migration is either wholly applied and recorded or not at all. Several
// processes may call it at once on one database: each migration is applied
// once (see Dialect.lockMigrations).
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	// One connection throughout: on PostgreSQL it holds the session lock.
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	unlock, err := db.dialect.lockMigrations(ctx, conn)
	if err != nil {
		return err
	}
	defer unlock()

	if _, err := conn.ExecContext(ctx, createSchemaMigrations); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if int(newest.Int64) > len(ms) {
		return fmt.Errorf("the database has schema version %d but this myelin knows only up to %d: it was used by a newer myelin (downgrades are not supported)",
			newest.Int64, len(ms))
	}
	for _, m := range ms {
		if m.version <= int(newest.Int64) {
			continue // migrations are applied in order, so this one is done
		}
		if err := db.applyMigration(ctx, conn, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	// Checked inside the transaction: on SQLite another process may have
	// applied it since we looked; this transaction's write lock excludes that.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, db.dialect.ddl(m.sql)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)`,
		m.version, m.name, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
