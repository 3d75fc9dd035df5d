package storage_test

import (
	"context"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestDeviceListUpdateChain: each device of a change gets its own
// stream_id, chained by prev_id to the user's previous update; the last
// one is the user's stream_id for /user/devices; the records are deleted
// once, so a second deleter learns it came too late.
func TestDeviceListUpdateChain(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const user = "@alice:example.org"
		change := func(devices ...string) {
			t.Helper()
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				if _, err := tx.MarkDeviceListChanged(ctx, user); err != nil {
					return err
				}
				return tx.QueueDeviceListUpdates(ctx, user, devices)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		change("A")
		change("B", "C")
		if err := db.WithTx(ctx, func(tx *storage.Tx) error { return tx.QueueSigningKeyUpdate(ctx, user) }); err != nil {
			t.Fatal(err)
		}
		ups, err := db.DeviceListUpdates(ctx, 10)
		if err != nil || len(ups) != 4 {
			t.Fatalf("updates %+v, %v", ups, err)
		}
		if ups[0].DeviceID != "A" || ups[0].PrevID != 0 || ups[1].PrevID != ups[0].StreamID ||
			ups[2].PrevID != ups[1].StreamID || ups[2].StreamID <= ups[1].StreamID || ups[3].DeviceID != "" {
			t.Fatalf("chain %+v", ups)
		}
		if id, err := db.DeviceListStreamID(ctx, user); err != nil || id != ups[2].StreamID {
			t.Fatalf("stream ID %d, %v; want %d", id, err, ups[2].StreamID)
		}
		nids := []int64{ups[0].NID, ups[1].NID, ups[2].NID, ups[3].NID}
		for i, want := range []int64{4, 0} {
			var n int64
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				n, err = tx.DeleteDeviceListUpdates(ctx, nids)
				return err
			})
			if err != nil || n != want {
				t.Fatalf("deletion %d: %d, %v; want %d", i, n, err, want)
			}
		}
	})
}

// TestRemoteDeviceListStates: a remote user's list is cached when fetched
// and not stale, and shares a room when joined to a room a local user is
// joined to.
func TestRemoteDeviceListStates(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const fresh, stale, unknown = "@f:remote.example", "@s:remote.example", "@u:remote.example"
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.SetRemoteDeviceList(ctx, fresh, storage.RemoteDeviceList{StreamID: 7}); err != nil {
				return err
			}
			if err := tx.SetRemoteDeviceList(ctx, stale, storage.RemoteDeviceList{StreamID: 3}); err != nil {
				return err
			}
			return tx.MarkRemoteDeviceListStale(ctx, stale)
		})
		if err != nil {
			t.Fatal(err)
		}
		states, err := db.RemoteDeviceListStates(ctx, []string{fresh, stale, unknown}, "example.org")
		if err != nil {
			t.Fatal(err)
		}
		if !states[fresh].Cached || states[stale].Cached || states[unknown].Cached || states[fresh].SharesRoom {
			t.Fatalf("states %+v", states)
		}
		var l *storage.RemoteDeviceList
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			var err error
			l, err = tx.RemoteDeviceList(ctx, stale)
			return err
		})
		if err != nil || l == nil || !l.Stale || l.StreamID != 3 {
			t.Fatalf("stale list %+v, %v", l, err)
		}
		users, err := db.StaleRemoteDeviceLists(ctx, 10)
		if err != nil || len(users) != 1 || users[0] != stale {
			t.Fatalf("stale lists %v, %v", users, err)
		}
	})
}

// TestInboundToDeviceOnce: an m.direct_to_device message ID is new once per
// origin.
func TestInboundToDeviceOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for i, c := range []struct {
			origin, id string
			fresh      bool
		}{{"a.example", "m1", true}, {"a.example", "m1", false}, {"b.example", "m1", true}} {
			var fresh bool
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				fresh, err = tx.ClaimInboundToDevice(ctx, c.origin, c.id)
				return err
			})
			if err != nil || fresh != c.fresh {
				t.Fatalf("%d: fresh %v, %v; want %v", i, fresh, err, c.fresh)
			}
		}
	})
}
