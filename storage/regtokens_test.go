package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestRegistrationTokenValid(t *testing.T) {
	one, past, future := int64(1), int64(1000), time.Now().Add(time.Hour).UnixMilli()
	now := time.Now().UnixMilli()
	for _, c := range []struct {
		tok  storage.RegistrationToken
		want bool
	}{
		{storage.RegistrationToken{}, true},
		{storage.RegistrationToken{UsesAllowed: &one}, true},
		{storage.RegistrationToken{UsesAllowed: &one, Pending: 1}, false},
		{storage.RegistrationToken{UsesAllowed: &one, Completed: 1}, false},
		{storage.RegistrationToken{ExpiryTime: &past}, false},
		{storage.RegistrationToken{ExpiryTime: &future}, true},
	} {
		if got := c.tok.Valid(now); got != c.want {
			t.Errorf("%+v: Valid = %v", c.tok, got)
		}
	}
}

// TestUIASessionsHoldTokenUses: a session that passed the token stage holds
// a pending use, given back when it expires and turned into a completed
// one when its registration finishes.
func TestUIASessionsHoldTokenUses(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		tx := func(fn func(tx *storage.Tx) error) {
			t.Helper()
			if err := db.WithTx(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		tx(func(tx *storage.Tx) error {
			if err := tx.CreateRegistrationToken(ctx, storage.RegistrationToken{Token: "tok"}); err != nil {
				return err
			}
			if err := tx.CreateRegistrationToken(ctx, storage.RegistrationToken{Token: "tok"}); !errors.Is(err, storage.ErrTokenExists) {
				t.Errorf("duplicate token: %v", err)
			}
			for _, id := range []string{"s1", "s2"} {
				if err := tx.CreateUIASession(ctx, id, "register"); err != nil {
					return err
				}
				s, err := tx.GetUIASession(ctx, id)
				if err != nil {
					return err
				}
				s.Completed, s.RegistrationToken = []string{"m.login.registration_token"}, "tok"
				if err := tx.UpdateUIASession(ctx, s); err != nil {
					return err
				}
				if err := tx.AddRegistrationTokenPending(ctx, "tok", 1); err != nil {
					return err
				}
			}
			return nil
		})
		check := func(pending, completed int64) {
			t.Helper()
			tok, err := db.GetRegistrationToken(ctx, "tok")
			if err != nil {
				t.Fatal(err)
			}
			if tok.Pending != pending || tok.Completed != completed {
				t.Fatalf("pending %d completed %d, want %d %d", tok.Pending, tok.Completed, pending, completed)
			}
		}
		check(2, 0)
		tx(func(tx *storage.Tx) error {
			if err := tx.CompleteRegistrationToken(ctx, "tok"); err != nil {
				return err
			}
			return tx.DeleteUIASession(ctx, "s1", true)
		})
		check(1, 1)
		// s2 expires: its pending use comes back.
		tx(func(tx *storage.Tx) error {
			return tx.ExpireUIASessions(ctx, time.Now().Add(time.Minute).UnixMilli(), 10)
		})
		check(0, 1)
		tx(func(tx *storage.Tx) error {
			if _, err := tx.GetUIASession(ctx, "s2"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("expired session still there: %v", err)
			}
			return nil
		})
	})
}

func TestDevicesAndTokens(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.CreateAccount(ctx, "alice", "", false); err != nil {
			t.Fatal(err)
		}
		name := "Phone"
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, id := range []string{"A", "B"} {
				created, err := tx.UpsertDevice(ctx, "alice", id, &name)
				if err != nil || !created {
					t.Fatalf("create %s: %v %v", id, created, err)
				}
				if err := tx.AddAccessToken(ctx, storage.AccessToken{Hash: "h" + id, Localpart: "alice", DeviceID: id}); err != nil {
					return err
				}
			}
			other := "Other"
			created, err := tx.UpsertDevice(ctx, "alice", "A", &other)
			if err != nil || created {
				t.Fatalf("upsert existing: %v %v", created, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := db.GetDevice(ctx, "alice", "A"); err != nil || *d.DisplayName != "Phone" {
			t.Fatalf("device A %+v %v (an existing device keeps its name)", d, err)
		}
		if o, err := db.LookupAccessToken(ctx, "hB"); err != nil || o.DeviceID != "B" || o.Localpart != "alice" {
			t.Fatalf("token B %+v %v", o, err)
		}
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			deleted, err := tx.DeleteAllDevices(ctx, "alice", "A")
			if err != nil || len(deleted) != 1 || deleted[0] != "B" {
				t.Fatalf("deleted %v %v", deleted, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.LookupAccessToken(ctx, "hB"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token of a deleted device: %v", err)
		}
		if _, err := db.LookupAccessToken(ctx, "hA"); err != nil {
			t.Fatalf("kept device's token: %v", err)
		}
	})
}
