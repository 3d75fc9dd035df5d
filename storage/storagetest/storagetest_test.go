package storagetest_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestIsolation: two fresh databases of one kind never share rows.
func TestIsolation(t *testing.T) {
	ctx := context.Background()
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			a, b := storagetest.Open(t, d), storagetest.Open(t, d)
			if a.Dialect() != d || b.Dialect() != d {
				t.Fatalf("dialects %q and %q, want %q", a.Dialect(), b.Dialect(), d)
			}
			if err := a.CreateAccount(ctx, "only-in-a", "", false); err != nil {
				t.Fatal(err)
			}
			if _, err := b.GetAccount(ctx, "only-in-a"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("second database sees the first one's row: %v", err)
			}
		})
	}
}

func TestForEachDB(t *testing.T) {
	var ran []storage.Dialect
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ran = append(ran, db.Dialect())
	})
	want := storagetest.Dialects()
	if len(ran) != len(want) {
		t.Fatalf("ran on %v, want %v", ran, want)
	}
	for i := range want {
		if ran[i] != want[i] {
			t.Errorf("ran on %v, want %v", ran, want)
		}
	}
	if want[0] != storage.SQLite {
		t.Errorf("Dialects() = %v, want SQLite first and always", want)
	}
	if (len(want) == 2) != (os.Getenv(storagetest.EnvPostgres) != "") {
		t.Errorf("Dialects() = %v with %s=%q", want, storagetest.EnvPostgres, os.Getenv(storagetest.EnvPostgres))
	}
}

// TestSchemaDropped: a PostgreSQL test schema is gone once its test ends.
// Without MYELIN_TEST_POSTGRES it checks the SQLite DSN instead.
func TestSchemaDropped(t *testing.T) {
	var dsns []string
	t.Run("inner", func(t *testing.T) {
		dsns = storagetest.DSNs(t)
		for _, dsn := range dsns {
			db, err := storage.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
		}
	})
	if len(dsns) != len(storagetest.Dialects()) {
		t.Fatalf("DSNs gave %d, want one per dialect", len(dsns))
	}
	for _, dsn := range dsns[1:] { // PostgreSQL
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema := u.Query().Get("search_path")
		if schema == "" {
			t.Fatalf("DSN %q selects no schema", dsn)
		}
		admin, err := sql.Open("postgres", os.Getenv(storagetest.EnvPostgres))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		var n int
		if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("schema %s still exists after its test", schema)
		}
	}
	if _, err := os.Stat(dsns[0][len("sqlite:"):]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SQLite file %s still exists after its test: %v", dsns[0], err)
	}
}
