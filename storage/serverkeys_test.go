package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestServerKeys(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const srv = "remote.test:8448"
		pubA := bytes.Repeat([]byte{1}, 32)
		pubB := bytes.Repeat([]byte{2}, 32)
		resp := func(json string, validUntil, fetched int64) storage.ServerKeyResponse {
			return storage.ServerKeyResponse{ServerName: srv, JSON: []byte(json), ValidUntilTS: validUntil, FetchedTS: fetched}
		}
		key := func(id string, pub []byte, validUntil, expired, fetched int64) storage.ServerKey {
			return storage.ServerKey{ServerName: srv, KeyID: id, PublicKey: pub, ValidUntilTS: validUntil, ExpiredTS: expired, FetchedTS: fetched}
		}
		get := func() map[string]storage.ServerKey {
			t.Helper()
			ks, err := db.ServerKeys(ctx, srv)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]storage.ServerKey{}
			for _, k := range ks {
				m[k.KeyID] = k
			}
			return m
		}

		if ks, err := db.ServerKeys(ctx, srv); err != nil || len(ks) != 0 {
			t.Fatalf("unknown server: %v, %v", ks, err)
		}
		if _, err := db.ServerKeyResponse(ctx, srv); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown server's response: %v", err)
		}

		// A first direct fetch: key A current until 2000.
		if err := db.StoreServerKeys(ctx, resp(`{"r":1}`, 2000, 100), true, []storage.ServerKey{key("ed25519:a", pubA, 2000, 0, 100)}); err != nil {
			t.Fatal(err)
		}
		if k := get()["ed25519:a"]; !bytes.Equal(k.PublicKey, pubA) || k.ValidUntilTS != 2000 || k.ExpiredTS != 0 || k.FetchedTS != 100 {
			t.Fatalf("key a = %+v", k)
		}

		// An older response from a notary (valid until 1500) shortens
		// nothing and does not replace the kept response.
		if err := db.StoreServerKeys(ctx, resp(`{"r":"old"}`, 1500, 150), false, []storage.ServerKey{key("ed25519:a", pubA, 1500, 0, 150)}); err != nil {
			t.Fatal(err)
		}
		if k := get()["ed25519:a"]; k.ValidUntilTS != 2000 || k.FetchedTS != 150 {
			t.Fatalf("after an older response: key a = %+v", k)
		}
		if r, err := db.ServerKeyResponse(ctx, srv); err != nil || string(r.JSON) != `{"r":1}` || r.ValidUntilTS != 2000 || r.FetchedTS != 100 {
			t.Fatalf("kept response = %+v, %v", r, err)
		}

		// Rotation, fetched directly: b is current, a expired at 2500.
		// The response replaces the kept one even though it is valid for
		// less long than the notary's would have been.
		if err := db.StoreServerKeys(ctx, resp(`{"r":2}`, 1800, 200), true, []storage.ServerKey{
			key("ed25519:b", pubB, 1800, 0, 200),
			key("ed25519:a", pubA, 2500, 2500, 200),
		}); err != nil {
			t.Fatal(err)
		}
		ks := get()
		if a := ks["ed25519:a"]; a.ExpiredTS != 2500 || a.ValidUntilTS != 2500 {
			t.Fatalf("old key a = %+v", a)
		}
		if b := ks["ed25519:b"]; b.ExpiredTS != 0 || b.ValidUntilTS != 1800 || !bytes.Equal(b.PublicKey, pubB) {
			t.Fatalf("new key b = %+v", b)
		}
		if r, _ := db.ServerKeyResponse(ctx, srv); string(r.JSON) != `{"r":2}` {
			t.Fatalf("a direct response did not replace the kept one: %s", r.JSON)
		}

		// A stale response listing a as current again does not revive it;
		// a later expired_ts does not move its expiry; an earlier one does.
		if err := db.StoreServerKeys(ctx, resp(`{"r":3}`, 3000, 300), false, []storage.ServerKey{key("ed25519:a", pubA, 3000, 0, 300)}); err != nil {
			t.Fatal(err)
		}
		if a := get()["ed25519:a"]; a.ExpiredTS != 2500 {
			t.Fatalf("a stale response revived old key a: %+v", a)
		}
		// ...but it is valid for longer than the kept response, so it is kept.
		if r, _ := db.ServerKeyResponse(ctx, srv); string(r.JSON) != `{"r":3}` {
			t.Fatalf("a notary response valid for longer was not kept: %s", r.JSON)
		}
		db.StoreServerKeys(ctx, resp(`{}`, 1, 301), false, []storage.ServerKey{key("ed25519:a", pubA, 2600, 2600, 301)})
		if a := get()["ed25519:a"]; a.ExpiredTS != 2500 {
			t.Fatalf("a later expired_ts moved a's expiry: %+v", a)
		}
		db.StoreServerKeys(ctx, resp(`{}`, 1, 302), false, []storage.ServerKey{key("ed25519:a", pubA, 2400, 2400, 302)})
		if a := get()["ed25519:a"]; a.ExpiredTS != 2400 {
			t.Fatalf("an earlier expired_ts was ignored: %+v", a)
		}

		// The same key ID with another public key replaces the key.
		if err := db.StoreServerKeys(ctx, resp(`{}`, 1, 400), false, []storage.ServerKey{key("ed25519:a", pubB, 900, 0, 400)}); err != nil {
			t.Fatal(err)
		}
		if a := get()["ed25519:a"]; !bytes.Equal(a.PublicKey, pubB) || a.ValidUntilTS != 900 || a.ExpiredTS != 0 {
			t.Fatalf("replaced key a = %+v", a)
		}

		// Other servers are separate.
		if ks, _ := db.ServerKeys(ctx, "other.test"); len(ks) != 0 {
			t.Fatalf("other server has %v", ks)
		}
		if err := db.StoreServerKeys(ctx, resp(`{}`, 1, 1), true, []storage.ServerKey{{ServerName: "other.test", KeyID: "ed25519:x", PublicKey: pubA}}); err == nil {
			t.Fatal("a key of another server stored with this server's response")
		}
	})
}
