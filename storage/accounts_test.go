package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestAccounts(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		before := time.Now().UnixMilli()
		if err := db.CreateAccount(ctx, "alice", "$2a$12$hash", true); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAccount(ctx, "bob", "", false); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixMilli()

		a, err := db.GetAccount(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if a.Localpart != "alice" || a.PasswordHash != "$2a$12$hash" || !a.IsAdmin || a.Deactivated {
			t.Errorf("alice = %+v", a)
		}
		if a.CreatedTS < before || a.CreatedTS > after {
			t.Errorf("alice.CreatedTS = %d, want within [%d, %d]", a.CreatedTS, before, after)
		}
		b, err := db.GetAccount(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if b.PasswordHash != "" || b.IsAdmin || b.Deactivated {
			t.Errorf("bob = %+v", b)
		}

		// A duplicate is refused and changes nothing.
		err = db.CreateAccount(ctx, "alice", "other", false)
		if !errors.Is(err, storage.ErrAccountExists) {
			t.Errorf("duplicate CreateAccount = %v, want ErrAccountExists", err)
		}
		if a2, _ := db.GetAccount(ctx, "alice"); a2 == nil || *a2 != *a {
			t.Errorf("after the refused duplicate alice = %+v, want %+v", a2, a)
		}

		// Localparts are compared exactly (case folding is the caller's).
		if _, err := db.GetAccount(ctx, "Alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAccount(Alice) = %v, want ErrNotFound", err)
		}
		if _, err := db.GetAccount(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAccount(nobody) = %v, want ErrNotFound", err)
		}
		if err := db.CreateAccount(ctx, "", "x", false); err == nil {
			t.Error("CreateAccount with an empty localpart succeeded")
		}

		// Arbitrary text survives: quotes, unicode, a NUL-free odd string.
		odd := "o'brien\"; DROP TABLE accounts; --é😀"
		if err := db.CreateAccount(ctx, odd, "h", false); err != nil {
			t.Fatal(err)
		}
		if got, err := db.GetAccount(ctx, odd); err != nil || got.Localpart != odd {
			t.Errorf("GetAccount(odd) = %+v, %v", got, err)
		}
	})
}

func TestContextCancelled(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := db.CreateAccount(ctx, "late", "", false); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateAccount on a cancelled context = %v, want context.Canceled", err)
		}
		if _, err := db.GetAccount(ctx, "late"); !errors.Is(err, context.Canceled) {
			t.Errorf("GetAccount on a cancelled context = %v, want context.Canceled", err)
		}
		mustNotExist(t, db, "late")
	})
}
