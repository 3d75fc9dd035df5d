package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// twoProcesses opens two handles on one fresh database, each with its own
// Authenticator, sharing revocations on one bus: two server processes.
func twoProcesses(t *testing.T, d storage.Dialect, opts ...Option) (db1 *storage.DB, a1, a2 *Authenticator) {
	t.Helper()
	ctx := context.Background()
	dsn := storagetest.DSN(t, d)
	var dbs [2]*storage.DB
	var as [2]*Authenticator
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Namespace: "authcache"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for i := range dbs {
		if dbs[i], err = storage.Open(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		db := dbs[i]
		t.Cleanup(func() { db.Close() })
		as[i] = New(db, "example.org", opts...)
		if err := as[i].ShareRevocations(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return dbs[0], as[0], as[1]
}

func login(t *testing.T, db *storage.DB, a *Authenticator, req LoginRequest) *Session {
	t.Helper()
	var s *Session
	err := db.WithTx(context.Background(), func(tx *storage.Tx) error {
		var err error
		s, err = a.Login(context.Background(), tx, req)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tokenRefused(err error) bool {
	me, ok := errors.AsType[*httputil.Error](err)
	return ok && me.Status == 401 && me.Code == httputil.CodeUnknownToken
}

// mustWork authenticates token on each of as (which keeps its owner).
func mustWork(t *testing.T, token string, as ...*Authenticator) {
	t.Helper()
	for i, a := range as {
		if _, err := a.authenticateToken(context.Background(), token, "127.0.0.1"); err != nil {
			t.Fatalf("process %d: token refused: %v", i+1, err)
		}
	}
}

// mustBeRefused: the process that revoked refuses the token at once, the
// other as soon as the bus brings the news.
func mustBeRefused(t *testing.T, token string, here, there *Authenticator) {
	t.Helper()
	if _, err := here.authenticateToken(context.Background(), token, "127.0.0.1"); !tokenRefused(err) {
		t.Fatalf("revoking process: token not refused at once: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := there.authenticateToken(context.Background(), token, "127.0.0.1")
		if tokenRefused(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("other process: token still accepted: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTokenCacheRevocations: whatever ends a token, a process that has
// already checked it (and keeps its owner) refuses it afterwards: the one
// that ended it at once, the others through the bus. Each case goes
// through the storage calls its endpoint makes.
func TestTokenCacheRevocations(t *testing.T) {
	ctx := context.Background()
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			db, a1, a2 := twoProcesses(t, d)
			for _, lp := range []string{"alice", "bob"} {
				if err := db.CreateAccount(ctx, lp, "", false); err != nil {
					t.Fatal(err)
				}
			}
			withTx := func(fn func(tx *storage.Tx) error) {
				t.Helper()
				if err := db.WithTx(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}

			// /logout and DELETE /devices/{id}: the device goes.
			s := login(t, db, a1, LoginRequest{Localpart: "alice", DeviceID: "PHONE"})
			other := login(t, db, a1, LoginRequest{Localpart: "alice", DeviceID: "LAPTOP"})
			bobs := login(t, db, a1, LoginRequest{Localpart: "bob", DeviceID: "BOB"})
			mustWork(t, s.AccessToken, a1, a2)
			mustWork(t, other.AccessToken, a1, a2)
			mustWork(t, bobs.AccessToken, a1, a2)
			withTx(func(tx *storage.Tx) error {
				_, err := tx.DeleteDevices(ctx, "alice", []string{"PHONE"})
				return err
			})
			mustBeRefused(t, s.AccessToken, a1, a2)
			mustWork(t, other.AccessToken, a1, a2)
			mustWork(t, bobs.AccessToken, a1, a2)

			// A login reusing a device ID replaces its tokens.
			again := login(t, db, a1, LoginRequest{Localpart: "alice", DeviceID: "LAPTOP"})
			mustBeRefused(t, other.AccessToken, a1, a2)
			mustWork(t, again.AccessToken, a1, a2)

			// /logout/all, and a password change with logout_devices
			// (every device but the requester's).
			kept := login(t, db, a1, LoginRequest{Localpart: "alice", DeviceID: "KEPT"})
			mustWork(t, kept.AccessToken, a1, a2)
			withTx(func(tx *storage.Tx) error {
				if err := tx.SetPasswordHash(ctx, "alice", "x"); err != nil {
					return err
				}
				_, err := tx.DeleteAllDevices(ctx, "alice", "KEPT")
				return err
			})
			mustBeRefused(t, again.AccessToken, a1, a2)
			mustWork(t, kept.AccessToken, a1, a2)
			withTx(func(tx *storage.Tx) error {
				_, err := tx.DeleteAllDevices(ctx, "alice")
				return err
			})
			mustBeRefused(t, kept.AccessToken, a1, a2)
			mustWork(t, bobs.AccessToken, a1, a2)

			// Deactivation.
			withTx(func(tx *storage.Tx) error { return tx.DeactivateAccount(ctx, "bob", false) })
			mustBeRefused(t, bobs.AccessToken, a1, a2)

			// A revocation in the other process reaches this one too.
			carol := login(t, db, a1, LoginRequest{Localpart: "alice", DeviceID: "CAROL"})
			mustWork(t, carol.AccessToken, a1, a2)
			if err := a2.db.WithTx(ctx, func(tx *storage.Tx) error {
				_, err := tx.DeleteDevices(ctx, "alice", []string{"CAROL"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			mustBeRefused(t, carol.AccessToken, a2, a1)
		})
	}
}

// TestTokenCacheRefreshAndExpiry: an access token from /refresh spends the
// refresh token it replaced on its first use even when the old access
// token is kept in memory, the old access token keeps working until it
// expires, and an expired token is a soft logout however it was kept.
func TestTokenCacheRefreshAndExpiry(t *testing.T) {
	ctx := context.Background()
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		const lifetime = 300 * time.Millisecond
		a := New(db, "example.org", WithAccessTokenLifetime(lifetime))
		if err := db.CreateAccount(ctx, "alice", "", false); err != nil {
			t.Fatal(err)
		}
		s1 := login(t, db, a, LoginRequest{Localpart: "alice", DeviceID: "DEV", Refresh: true})
		mustWork(t, s1.AccessToken, a, a) // the second use is from memory
		s2, err := a.Refresh(ctx, s1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		mustWork(t, s1.AccessToken, a)
		// Until the new token is used, the old refresh token may be retried.
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.LookupRefreshToken(ctx, HashToken(s1.RefreshToken))
			return err
		}); err != nil {
			t.Fatalf("old refresh token spent before the new access token was used: %v", err)
		}
		mustWork(t, s2.AccessToken, a, a)
		if _, err := a.Refresh(ctx, s1.RefreshToken); !tokenRefused(err) {
			t.Fatalf("old refresh token after the new access token's first use: %v", err)
		}

		time.Sleep(lifetime + 50*time.Millisecond)
		for _, tok := range []string{s1.AccessToken, s2.AccessToken} {
			_, err := a.authenticateToken(ctx, tok, "127.0.0.1")
			me, ok := errors.AsType[*httputil.Error](err)
			if !ok || me.Status != 401 || me.Code != httputil.CodeUnknownToken || me.Extra["soft_logout"] != true {
				t.Fatalf("expired token: %v, want a soft logout", err)
			}
		}
	})
}

// TestTokenCacheKeepsNothingReadDuringARevocation: an owner read from the
// database before a revocation was announced, and kept after it, could be
// one the revocation removed: it is not kept.
func TestTokenCacheKeepsNothingReadDuringARevocation(t *testing.T) {
	c := newTokenCache()
	now := time.Now()
	owner := storage.TokenOwner{Localpart: "alice", DeviceID: "DEV"}
	gen := c.generation()
	c.revoke("bob") // any user: the read may have raced with any revocation
	c.put("h1", owner, gen, now)
	if _, ok := c.get("h1", now); ok {
		t.Fatal("owner read before a revocation was kept")
	}
	c.put("h1", owner, c.generation(), now)
	if _, ok := c.get("h1", now); !ok {
		t.Fatal("owner read after the revocation not kept")
	}
	if _, ok := c.get("h1", now.Add(tokenCacheTTL+time.Second)); ok {
		t.Fatal("owner kept past tokenCacheTTL")
	}
	// Tokens about to spend a refresh token, and deactivated accounts,
	// are never kept.
	c.put("h2", storage.TokenOwner{Localpart: "alice", SupersedesRefreshID: 7}, c.generation(), now)
	c.put("h3", storage.TokenOwner{Localpart: "alice", Deactivated: true}, c.generation(), now)
	if _, ok := c.get("h2", now); ok {
		t.Fatal("token superseding a refresh token kept")
	}
	if _, ok := c.get("h3", now); ok {
		t.Fatal("deactivated owner kept")
	}
}
