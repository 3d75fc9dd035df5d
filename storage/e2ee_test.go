package storage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestClaimKeysConcurrently: claimers racing for a device's last one-time
// keys, each in its own transaction, get each key exactly once; when the
// keys are gone they all get the fallback key. On PostgreSQL the claims
// really run at once (READ COMMITTED, row locks); on SQLite they queue.
func TestClaimKeysConcurrently(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const user, device, claimers = "@alice:example.org", "DEV", 32
		claim := storage.KeyClaim{UserID: user, DeviceID: device, Algorithm: "signed_curve25519"}
		race := func() (keys []string, fallbacks int) {
			var (
				mu sync.Mutex
				wg sync.WaitGroup
			)
			start := make(chan struct{})
			for range claimers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var got []storage.ClaimedKey
					err := db.WithTx(ctx, func(tx *storage.Tx) error {
						var err error
						got, err = tx.ClaimKeys(ctx, []storage.KeyClaim{claim})
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for _, k := range got {
						if k.Fallback {
							fallbacks++
						} else {
							keys = append(keys, k.Key.KeyID)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			slices.Sort(keys)
			return keys, fallbacks
		}
		upload := func(ids ...string) {
			var keys []storage.OneTimeKey
			for _, id := range ids {
				keys = append(keys, storage.OneTimeKey{Algorithm: "signed_curve25519", KeyID: id, KeyJSON: []byte(`"` + id + `"`)})
			}
			if err := db.WithTx(ctx, func(tx *storage.Tx) error { return tx.AddOneTimeKeys(ctx, user, device, keys) }); err != nil {
				t.Fatal(err)
			}
		}

		upload("last")
		if keys, fb := race(); !slices.Equal(keys, []string{"last"}) || fb != 0 {
			t.Fatalf("%d claimers of one key got %v (and %d fallback keys)", claimers, keys, fb)
		}
		var ids []string
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("k%02d", i))
		}
		upload(ids...)
		if keys, _ := race(); !slices.Equal(keys, ids) {
			t.Fatalf("%d claimers of 10 keys got %v", claimers, keys)
		}
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			return tx.SetFallbackKey(ctx, user, device, storage.OneTimeKey{Algorithm: "signed_curve25519", KeyID: "fb", KeyJSON: []byte(`{"key":"fb"}`)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if keys, fb := race(); len(keys) != 0 || fb != claimers {
			t.Fatalf("with only a fallback key: %v one-time keys, %d fallback keys", keys, fb)
		}
		c, err := db.DeviceKeyCounts(ctx, user, device)
		if err != nil || len(c.OneTimeKeys) != 0 || len(c.UnusedFallback) != 0 {
			t.Fatalf("counts after the race: %+v, %v", c, err)
		}
	})
}

// TestOneTimeKeyConflict: a different value under a stored key's name is
// ErrKeyConflict; the same value again is fine.
func TestOneTimeKeyConflict(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		add := func(json string) error {
			return db.WithTx(ctx, func(tx *storage.Tx) error {
				return tx.AddOneTimeKeys(ctx, "@a:x", "D", []storage.OneTimeKey{{Algorithm: "curve25519", KeyID: "1", KeyJSON: []byte(json)}})
			})
		}
		if err := add(`"a"`); err != nil {
			t.Fatal(err)
		}
		if err := add(`"a"`); err != nil {
			t.Fatalf("the same key again: %v", err)
		}
		if err := add(`"b"`); !errors.Is(err, storage.ErrKeyConflict) {
			t.Fatalf("another value: %v, want ErrKeyConflict", err)
		}
	})
}

// TestForgetDevices: deleting a device's keys takes everything of it and
// marks the device list changed, once, with an update for other servers;
// a device without keys changes nothing.
func TestForgetDevices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const user = "@alice:example.org"
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			if _, err := tx.SetDeviceKeys(ctx, user, "D1", []byte(`{"device_id":"D1"}`)); err != nil {
				return err
			}
			if err := tx.AddOneTimeKeys(ctx, user, "D1", []storage.OneTimeKey{{Algorithm: "a", KeyID: "1", KeyJSON: []byte(`"k"`)}}); err != nil {
				return err
			}
			return tx.QueueToDevice(ctx, 1, "@bob:x", "m.t", []storage.ToDeviceDelivery{{UserID: user, DeviceID: "D1", Content: []byte(`{}`)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		var pos, none int64
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			var err error
			if none, err = tx.ForgetDevices(ctx, user, []string{"D2"}); err != nil {
				return err
			}
			pos, err = tx.ForgetDevices(ctx, user, []string{"D1"})
			return err
		})
		if err != nil || none != 0 || pos == 0 {
			t.Fatalf("delete: positions %d (no keys) and %d (keys), %v", none, pos, err)
		}
		if _, err := db.DeviceKeysOf(ctx, user, "D1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("device keys after delete: %v", err)
		}
		c, _ := db.DeviceKeyCounts(ctx, user, "D1")
		msgs, _ := db.ToDeviceMessages(ctx, user, "D1", 0, 1<<62, 10)
		if len(c.OneTimeKeys) != 0 || len(msgs) != 0 {
			t.Fatalf("left behind: %+v, %d messages", c, len(msgs))
		}
		// Other servers are told, with the update's own stream_id.
		ups, _ := db.DeviceListUpdates(ctx, 10)
		if id, _ := db.DeviceListStreamID(ctx, user); len(ups) != 1 || ups[0].DeviceID != "D1" || id != ups[0].StreamID || id <= pos {
			t.Fatalf("stream ID %d, updates %+v", id, ups)
		}
	})
}
