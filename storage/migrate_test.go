package storage_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// embeddedVersions is how many migrations the binary carries.
func embeddedVersions(t *testing.T) int {
	t.Helper()
	ms, err := storage.LoadMigrations(storage.MigrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// checkRecorded fails unless schema_migrations holds versions 1..n once each.
func checkRecorded(t *testing.T, db *storage.DB, n int) {
	t.Helper()
	var rows, distinct, newest int
	err := db.WithTx(context.Background(), func(tx *storage.Tx) error {
		ctx := context.Background()
		if err := tx.QueryValue(ctx, &rows, `SELECT COUNT(*) FROM schema_migrations`); err != nil {
			return err
		}
		if err := tx.QueryValue(ctx, &distinct, `SELECT COUNT(DISTINCT version) FROM schema_migrations`); err != nil {
			return err
		}
		return tx.QueryValue(ctx, &newest, `SELECT MAX(version) FROM schema_migrations`)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || newest != n {
		t.Errorf("schema_migrations: %d rows, %d versions, newest %d; want %d of each", rows, distinct, newest, n)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	n := embeddedVersions(t)
	ctx := context.Background()
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dsn := storagetest.DSN(t, d)
			for i := range 3 { // the first Open migrates; the others find nothing to do
				db, err := storage.Open(ctx, dsn)
				if err != nil {
					t.Fatalf("Open #%d: %v", i+1, err)
				}
				if err := db.CreateAccount(ctx, "user"+string(rune('a'+i)), "", false); err != nil {
					t.Fatal(err)
				}
				// Running the migrations again on an open database is a no-op too.
				if err := db.Migrate(ctx, storage.MigrationFiles); err != nil {
					t.Fatal(err)
				}
				checkRecorded(t, db, n)
				db.Close()
			}
		})
	}
}

// TestConcurrentOpen starts several "processes" (independent DB handles)
// at once on one fresh database: each migration must be applied once, and
// every Open must succeed.
func TestConcurrentOpen(t *testing.T) {
	n := embeddedVersions(t)
	ctx := context.Background()
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dsn := storagetest.DSN(t, d)
			const procs = 6
			dbs := make([]*storage.DB, procs)
			errs := make([]error, procs)
			var wg sync.WaitGroup
			for i := range procs {
				wg.Go(func() { dbs[i], errs[i] = storage.Open(ctx, dsn) })
			}
			wg.Wait()
			for i := range procs {
				if errs[i] != nil {
					t.Errorf("Open #%d: %v", i, errs[i])
					continue
				}
				defer dbs[i].Close()
			}
			if t.Failed() {
				return
			}
			checkRecorded(t, dbs[0], n)
		})
	}
}

// testMigrations is every real migration followed by extra ones. The
// extra files are named by their place after the real ones ("+1_what.sql"
// is the first migration after the newest real one), so these tests keep
// working as the schema grows.
func testMigrations(t *testing.T, extra map[string]string) fstest.MapFS {
	t.Helper()
	real, err := fs.Glob(storage.MigrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, name := range real {
		text, err := fs.ReadFile(storage.MigrationFiles, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: text}
	}
	for name, text := range extra {
		offset, rest, ok := strings.Cut(strings.TrimPrefix(name, "+"), "_")
		k, err := strconv.Atoi(offset)
		if !ok || err != nil {
			t.Fatalf("extra migration %q: want +K_what.sql", name)
		}
		fsys[fmt.Sprintf("migrations/%04d_%s", len(real)+k, rest)] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

// migrationName is the file name of the K-th extra migration of testMigrations.
func migrationName(k int, rest string) string {
	return fmt.Sprintf("%04d_%s", len(mustGlob())+k, rest)
}

func mustGlob() []string {
	real, err := fs.Glob(storage.MigrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	return real
}

func tableExists(t *testing.T, db *storage.DB, table string) bool {
	t.Helper()
	err := db.WithTx(context.Background(), func(tx *storage.Tx) error {
		var n int
		return tx.QueryValue(context.Background(), &n, `SELECT COUNT(*) FROM `+table)
	})
	return err == nil
}

func TestMigrationFailureRollsBack(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		fsys := testMigrations(t, map[string]string{
			// Several statements in one file all run.
			"+1_two_tables.sql": "CREATE TABLE two_a (x BIGINT);\nCREATE TABLE two_b (y TEXT);\n",
			// The first statement works, the second fails: neither may stay.
			"+2_broken.sql": "CREATE TABLE three (x BIGINT);\nINSERT INTO no_such_table VALUES (1);\n",
			"+3_after.sql":  "CREATE TABLE four (x BIGINT);\n",
		})
		err := db.Migrate(context.Background(), fsys)
		if err == nil || !strings.Contains(err.Error(), "migration "+migrationName(2, "broken.sql")) {
			t.Fatalf("Migrate = %v, want an error naming %s", err, migrationName(2, "broken.sql"))
		}
		for table, want := range map[string]bool{"two_a": true, "two_b": true, "three": false, "four": false} {
			if got := tableExists(t, db, table); got != want {
				t.Errorf("table %s exists = %v, want %v", table, got, want)
			}
		}
		checkRecorded(t, db, len(mustGlob())+1)
	})
}

func TestNewerDatabaseRefused(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_ts) VALUES (99, '0099_future.sql', 0)`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Migrate(ctx, storage.MigrationFiles)
		if err == nil || !strings.Contains(err.Error(), "schema version 99 but this myelin knows only up to") {
			t.Errorf("Migrate = %v, want a downgrade refusal", err)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    int    // migrations loaded
		wantErr string // substring; "" for success
	}{
		{"ordered", fstest.MapFS{"migrations/0001_a.sql": file("x"), "migrations/0002_b.sql": file("y")}, 2, ""},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("x"), "migrations/0003_c.sql": file("y")}, 0, "0003_c.sql: expected number 0002"},
		{"repeat", fstest.MapFS{"migrations/0001_a.sql": file("x"), "migrations/0001_b.sql": file("y")}, 0, "0001_b.sql: expected number 0002"},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": file("x")}, 0, "expected number 0001"},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": file("x")}, 0, "1_a.sql: not named NNNN_what.sql"},
		{"not sql", fstest.MapFS{"migrations/0001_a.txt": file("x")}, 0, "not named"},
		{"no directory", fstest.MapFS{}, 0, "migrations"},
		{"empty", fstest.MapFS{"migrations": &fstest.MapFile{Mode: os.ModeDir}}, 0, ""},
	}
	for _, tc := range tests {
		ms, err := storage.LoadMigrations(tc.fsys)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		case len(ms) != tc.want:
			t.Errorf("%s: loaded %d migrations, want %d", tc.name, len(ms), tc.want)
		}
	}
}

// TestSharedDDL: the spellings dialect.go rewrites for SQLite behave alike
// on both databases: BIGSERIAL numbers rows and never reuses a number,
// BYTEA keeps bytes, BOOLEAN round-trips.
func TestSharedDDL(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		fsys := testMigrations(t, map[string]string{
			"+1_things.sql": "CREATE TABLE things (id BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL, flag BOOLEAN NOT NULL);",
		})
		if err := db.Migrate(ctx, fsys); err != nil {
			t.Fatal(err)
		}
		blob := []byte{0, 1, 2, 0xff, 0xfe, '\'', 0}
		var ids []int64
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for range 3 {
				var id int64
				if err := tx.QueryValue(ctx, &id, `INSERT INTO things (data, flag) VALUES ($1, $2) RETURNING id`, blob, true); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM things WHERE id = $1`, ids[2]); err != nil {
				return err
			}
			var id int64
			if err := tx.QueryValue(ctx, &id, `INSERT INTO things (data, flag) VALUES ($1, $2) RETURNING id`, blob, false); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{1, 2, 3, 4}; !equal(ids, want) {
			t.Errorf("ids = %v, want %v (no reuse after a delete)", ids, want)
		}
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			var got []byte
			if err := tx.QueryValue(ctx, &got, `SELECT data FROM things WHERE id = $1`, 1); err != nil {
				return err
			}
			if string(got) != string(blob) {
				t.Errorf("data = %x, want %x", got, blob)
			}
			var flag bool
			if err := tx.QueryValue(ctx, &flag, `SELECT flag FROM things WHERE id = $1`, 4); err != nil {
				return err
			}
			if flag {
				t.Error("flag = true, want false")
			}
			// TRUE/FALSE literals compare with bound bools on both.
			var n int
			if err := tx.QueryValue(ctx, &n, `SELECT COUNT(*) FROM things WHERE flag = TRUE AND flag = $1`, true); err != nil {
				return err
			}
			if n != 2 {
				t.Errorf("%d rows with flag TRUE, want 2", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDDLRewrite(t *testing.T) {
	in := "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, b BYTEA, n BIGINT, s TEXT, f BOOLEAN)"
	if got := storage.DDL(storage.PostgreSQL, in); got != in {
		t.Errorf("PostgreSQL DDL = %q, want it unchanged", got)
	}
	want := "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB, n BIGINT, s TEXT, f BOOLEAN)"
	if got := storage.DDL(storage.SQLite, in); got != want {
		t.Errorf("SQLite DDL = %q, want %q", got, want)
	}
	// A keyed table: WITHOUT ROWID on SQLite, a comment to PostgreSQL.
	keyed := "CREATE TABLE k (a TEXT, b BIGINT, PRIMARY KEY (a, b)) /*WITHOUT ROWID*/;"
	if got, want := storage.DDL(storage.SQLite, keyed), "CREATE TABLE k (a TEXT, b BIGINT, PRIMARY KEY (a, b)) WITHOUT ROWID;"; got != want {
		t.Errorf("SQLite DDL = %q, want %q", got, want)
	}
	if got := storage.DDL(storage.PostgreSQL, keyed); got != keyed {
		t.Errorf("PostgreSQL DDL = %q, want it unchanged", got)
	}
}

// TestMigrationSpelling holds the embedded migrations to the spellings the
// SQLite rewrite recognises (it is case-sensitive).
func TestMigrationSpelling(t *testing.T) {
	entries, err := fs.ReadDir(storage.MigrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		text, err := fs.ReadFile(storage.MigrationFiles, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"bigserial", "Bigserial", "bytea", "Bytea", "AUTOINCREMENT", "BLOB", "JSONB", "jsonb"} {
			if strings.Contains(string(text), bad) {
				t.Errorf("%s contains %q: see doc.go for the shared SQL spellings", e.Name(), bad)
			}
		}
	}
}
