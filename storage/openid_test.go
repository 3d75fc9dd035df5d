package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestOpenIDTokens: a token names its user until it expires, and making a
// token deletes the expired ones.
func TestOpenIDTokens(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.CreateOpenIDToken(ctx, "h1", "@alice:example.org", 2000, 1000); err != nil {
			t.Fatal(err)
		}
		if u, err := db.OpenIDTokenUser(ctx, "h1", 1999); err != nil || u != "@alice:example.org" {
			t.Fatalf("before expiry: %q, %v", u, err)
		}
		for _, c := range []struct {
			hash string
			now  int64
		}{{"h1", 2000}, {"h1", 5000}, {"unknown", 1000}} {
			if u, err := db.OpenIDTokenUser(ctx, c.hash, c.now); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s at %d: %q, %v; want ErrNotFound", c.hash, c.now, u, err)
			}
		}
		// h1 has expired at 3000: making h2 then deletes it, so it stays
		// refused even for a reader with a clock behind.
		if err := db.CreateOpenIDToken(ctx, "h2", "@bob:example.org", 6000, 3000); err != nil {
			t.Fatal(err)
		}
		if _, err := db.OpenIDTokenUser(ctx, "h1", 0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("expired token kept: %v", err)
		}
		if u, err := db.OpenIDTokenUser(ctx, "h2", 3000); err != nil || u != "@bob:example.org" {
			t.Errorf("h2: %q, %v", u, err)
		}
		if err := db.CreateOpenIDToken(ctx, "h2", "@eve:example.org", 6000, 3000); err == nil {
			t.Error("a second token with the same hash was stored")
		}
	})
}
