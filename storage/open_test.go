package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestOpenErrors(t *testing.T) {
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	tests := []struct {
		dsn  string
		want []string // substrings of the error
	}{
		{"", []string{`database "": unsupported database`, "check --database"}},
		{"mysql://localhost/x", []string{`database "mysql://localhost/x": unsupported database`, `"sqlite:PATH"`}},
		{"/var/lib/myelin.db", []string{"unsupported database"}},
		{"sqlite:", []string{`database "sqlite:": no file path`}},
		{"sqlite::memory:", []string{"not a file path"}},
		{"sqlite:file:x.db?mode=ro", []string{"not a file path"}},
		{"sqlite:" + missingDir, []string{"cannot open", "does the directory exist", "check --database"}},
		{"postgres://myelin:hunter2@127.0.0.1:1/myelin?sslmode=disable",
			[]string{`database "postgres://myelin:xxxxx@127.0.0.1:1/myelin?sslmode=disable": cannot connect`, "is PostgreSQL running", "check --database"}},
		{"postgresql://127.0.0.1:1/myelin?sslmode=disable&connect_timeout=5", []string{"cannot connect"}},
		{"postgres://127.0.0.1/x?sslmode=bogus", []string{"not a valid PostgreSQL URL"}},
	}
	for _, tc := range tests {
		db, err := storage.Open(context.Background(), tc.dsn)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", tc.dsn)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %q, want it to contain %q", tc.dsn, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %q", tc.dsn, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) error is not one line: %q", tc.dsn, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"sqlite:/var/lib/myelin/myelin.db":              "sqlite:/var/lib/myelin/myelin.db",
		"postgres://u:secret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db?password=secret":             "postgres://u@h/db?password=xxxxx",
		"postgres://u:sec%zzret@h/db":                   "(unparsable URL, not shown because it may hold a password)",
	}
	for in, want := range tests {
		if got := storage.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenCreatesSQLiteFile(t *testing.T) {
	// A path with characters that mean something in a URI.
	path := filepath.Join(t.TempDir(), "a dir?#%", "my db.sqlite")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != storage.SQLite {
		t.Errorf("Dialect() = %q, want %q", db.Dialect(), storage.SQLite)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at the given path: %v", err)
	}
}

// TestSQLiteSettings checks that every connection got the settings doc.go
// promises.
func TestSQLiteSettings(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	ctx := context.Background()
	for _, reader := range []bool{false, true} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": "5000",
		} {
			var got string
			if err := db.QueryValue(ctx, reader, &got, "PRAGMA "+pragma); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("reader=%v: PRAGMA %s = %s, want %s", reader, pragma, got, want)
			}
		}
		var queryOnly int
		if err := db.QueryValue(ctx, reader, &queryOnly, "PRAGMA query_only"); err != nil {
			t.Fatal(err)
		}
		if (queryOnly == 1) != reader {
			t.Errorf("reader=%v: query_only = %d", reader, queryOnly)
		}
		var tempStore int
		if err := db.QueryValue(ctx, reader, &tempStore, "PRAGMA temp_store"); err != nil {
			t.Fatal(err)
		}
		if (tempStore == 2) == reader { // 2 = MEMORY, on the writer only
			t.Errorf("reader=%v: temp_store = %d", reader, tempStore)
		}
	}
}

func TestDialect(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		if want := storage.Dialect(strings.Split(t.Name(), "/")[1]); db.Dialect() != want {
			t.Errorf("Dialect() = %q, want %q", db.Dialect(), want)
		}
	})
}
