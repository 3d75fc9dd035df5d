// Package storagetest gives tests fresh, empty databases: an SQLite file
// always, and a PostgreSQL schema of their own when the environment
// variable MYELIN_TEST_POSTGRES holds a PostgreSQL URL, e.g.
//
//	MYELIN_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...
//
// Each PostgreSQL database is a uniquely named schema in that database,
// selected through the connection's search_path and dropped when the test
// ends, so tests (and test runs) never see each other's tables.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lib/pq" // the "postgres" driver, for creating and dropping schemas

	"github.com/myelin-chat/myelin/storage"
)

// EnvPostgres names the environment variable holding the PostgreSQL URL
// to test against.
const EnvPostgres = "MYELIN_TEST_POSTGRES"

// Dialects lists the databases tests run on: SQLite, then PostgreSQL if
// EnvPostgres is set.
func Dialects() []storage.Dialect {
	ds := []storage.Dialect{storage.SQLite}
	if os.Getenv(EnvPostgres) != "" {
		ds = append(ds, storage.PostgreSQL)
	}
	return ds
}

// ForEachDB runs fn as a subtest, named after the dialect, on a fresh open
// database of each kind in Dialects. The database is closed when the
// subtest ends.
func ForEachDB(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open opens a fresh database of kind d (see DSN), closed in t.Cleanup.
func Open(t testing.TB, d storage.Dialect) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), DSN(t, d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	return db
}

// DSNs returns a fresh DSN for each kind in Dialects, for a test that
// starts a whole server on each.
func DSNs(t testing.TB) []string {
	t.Helper()
	var dsns []string
	for _, d := range Dialects() {
		dsns = append(dsns, DSN(t, d))
	}
	return dsns
}

// DSN returns the DSN of a fresh, empty database of kind d for storage.Open:
// an SQLite file in t.TempDir(), or a new PostgreSQL schema that is dropped
// in t.Cleanup (after the cleanups registered later, such as closing the
// database). It fails the test if d is PostgreSQL and EnvPostgres is unset.
func DSN(t testing.TB, d storage.Dialect) string {
	t.Helper()
	switch d {
	case storage.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "myelin.db")
	case storage.PostgreSQL:
		return postgresSchema(t)
	}
	t.Fatalf("storagetest: unknown dialect %q", d)
	return ""
}

func postgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Fatalf("storagetest: a PostgreSQL database was asked for but %s is not set", EnvPostgres)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storagetest: %s must be a postgres:// URL: %q", EnvPostgres, base)
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", EnvPostgres, err)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "myelin_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("storagetest: create schema in %s: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Test packages run in parallel, and PostgreSQL may pick one of
		// two schemas dropped at once as a deadlock's victim: try again.
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if _, err = admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err == nil || !isDeadlock(err) {
				break
			}
			time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
		}
		if err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// isDeadlock says whether err is PostgreSQL's deadlock_detected (40P01).
func isDeadlock(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "40P01"
}
