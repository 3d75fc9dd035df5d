package storage_test

import (
	"context"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestFederationEDUQueue(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const a, b = "a.test", "b.test:8448"
		enqueue := func(dests []string, typ, key, content string) {
			t.Helper()
			if err := db.EnqueueEDU(ctx, dests, typ, key, []byte(content)); err != nil {
				t.Fatal(err)
			}
		}
		enqueue([]string{a, b}, "m.receipt", "k1", `{"n":1}`)
		enqueue([]string{a}, "m.direct_to_device", "", `{"n":2}`)
		enqueue([]string{a}, "m.direct_to_device", "", `{"n":3}`)
		// The same key replaces the waiting EDU, which moves to the end.
		enqueue([]string{a}, "m.receipt", "k1", `{"n":4}`)
		// The same key of another type is another EDU.
		enqueue([]string{a}, "m.other", "k1", `{"n":5}`)
		if err := db.EnqueueEDU(ctx, nil, "m.receipt", "", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}

		got, err := db.QueuedEDUs(ctx, a, 100)
		if err != nil {
			t.Fatal(err)
		}
		var contents []string
		for _, q := range got {
			contents = append(contents, string(q.Content))
		}
		if want := []string{`{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`}; !slices.Equal(contents, want) {
			t.Fatalf("queue of a: %v, want %v", contents, want)
		}
		if got[2].Type != "m.receipt" || got[2].Key != "k1" || got[2].Destination != a || got[0].Key != "" {
			t.Errorf("queued EDU fields: %+v", got)
		}
		if n, err := db.QueuedEDUCount(ctx, b); err != nil || n != 1 {
			t.Errorf("count of b: %d, %v", n, err)
		}
		dests, err := db.EDUQueueDestinations(ctx)
		if err != nil || !slices.Equal(dests, []string{a, b}) {
			t.Errorf("destinations: %v, %v", dests, err)
		}
		first2, err := db.QueuedEDUs(ctx, a, 2)
		if err != nil || len(first2) != 2 {
			t.Fatalf("limit 2: %d, %v", len(first2), err)
		}
		// Deleting is per destination: b's row with a's IDs stays.
		if err := db.DeleteQueuedEDUs(ctx, a, []int64{first2[0].ID, first2[1].ID}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteQueuedEDUs(ctx, b, []int64{first2[0].ID}); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.QueuedEDUCount(ctx, a); n != 2 {
			t.Errorf("a after deleting 2: %d", n)
		}
		if n, _ := db.QueuedEDUCount(ctx, b); n != 1 {
			t.Errorf("b after deleting another destination's IDs: %d", n)
		}
	})
}

func TestFederationCursor(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, found, err := db.FederationCursor(ctx, "receipts"); err != nil || found {
			t.Fatalf("before any: %v, %v", found, err)
		}
		for _, pos := range []int64{7, 42} {
			if err := db.WithTx(ctx, func(tx *storage.Tx) error { return tx.SetFederationCursor(ctx, "receipts", pos) }); err != nil {
				t.Fatal(err)
			}
			if got, found, err := db.FederationCursor(ctx, "receipts"); err != nil || !found || got != pos {
				t.Errorf("cursor: %d, %v, %v, want %d", got, found, err, pos)
			}
		}
	})
}

func TestRemoteReceiptsAndFeed(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		put := func(r storage.Receipt) int64 {
			t.Helper()
			var pos int64
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				pos, err = tx.PutRemoteReceipt(ctx, r)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return pos
		}
		r := storage.Receipt{RoomID: "!r:x", Type: "m.read", UserID: "@bob:remote", EventID: "$5", EventPos: 5, TS: 100}
		p1 := put(r)
		if p1 == 0 {
			t.Fatal("not stored")
		}
		if p := put(r); p != 0 {
			t.Errorf("the same receipt again took position %d", p)
		}
		// The remote server says where its user is; an event not held
		// here (position 0) still moves the receipt.
		unknown := r
		unknown.EventID, unknown.EventPos = "$unknown", 0
		p2 := put(unknown)
		threaded := r
		threaded.ThreadID = "$root"
		p3 := put(threaded)
		if p2 <= p1 || p3 <= p2 {
			t.Fatalf("positions %d %d %d", p1, p2, p3)
		}
		feed, err := db.ReceiptsAfter(ctx, p1, 10)
		if err != nil || len(feed) != 2 || feed[0].EventID != "$unknown" || feed[1].ThreadID != "$root" || feed[1].StreamPos != p3 {
			t.Errorf("ReceiptsAfter(p1) = %+v, %v", feed, err)
		}
		if one, err := db.ReceiptsAfter(ctx, 0, 1); err != nil || len(one) != 1 || one[0].StreamPos != p2 {
			t.Errorf("ReceiptsAfter(0, limit 1) = %+v, %v", one, err)
		}
	})
}

func TestRemotePresenceAndSharedRooms(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		put := func(p storage.Presence) int64 {
			t.Helper()
			var pos int64
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				pos, err = tx.PutPresence(ctx, p, true)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return pos
		}
		pLocal := put(storage.Presence{UserID: "@a:us.test", State: "online", LastActiveTS: 10})
		pRemote := put(storage.Presence{UserID: "@b:them.test", State: "online", LastActiveTS: 10, RemoteTS: 1000})
		got, err := db.GetPresence(ctx, "@b:them.test")
		if err != nil || got.RemoteTS != 1000 {
			t.Errorf("remote presence: %+v, %v", got, err)
		}
		// Only local users time out on their activity, only remote ones
		// on their server's silence.
		if stale, err := db.StalePresence(ctx, 20, 10); err != nil || !slices.Equal(stale, []string{"@a:us.test"}) {
			t.Errorf("StalePresence = %v, %v", stale, err)
		}
		if stale, err := db.StaleRemotePresence(ctx, 1000, 10); err != nil || len(stale) != 0 {
			t.Errorf("StaleRemotePresence(1000) = %v, %v", stale, err)
		}
		if stale, err := db.StaleRemotePresence(ctx, 1001, 10); err != nil || !slices.Equal(stale, []string{"@b:them.test"}) {
			t.Errorf("StaleRemotePresence(1001) = %v, %v", stale, err)
		}
		feed, err := db.PresenceAfter(ctx, pLocal-1, 10)
		if err != nil || len(feed) != 2 || feed[0].UserID != "@a:us.test" || feed[1].RemoteTS != 1000 || feed[1].StreamPos != pRemote {
			t.Errorf("PresenceAfter = %+v, %v", feed, err)
		}

		// @a:us.test and @b:them.test share !r; @c:them.test only left it;
		// @d:x_y.test is alone in !s.
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			r, err := tx.InsertRoom(ctx, "!r:us.test", "10")
			if err != nil {
				return err
			}
			s, err := tx.InsertRoom(ctx, "!s:us.test", "10")
			if err != nil {
				return err
			}
			for i, m := range []struct {
				room       int64
				user, memb string
			}{{r, "@a:us.test", "join"}, {r, "@b:them.test", "join"}, {r, "@c:them.test", "leave"}, {s, "@d:x_y.test", "join"}} {
				if err := tx.SetMembership(ctx, m.room, m.user, m.memb, int64(i+1)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		users, err := db.UsersSharingRoomWith(ctx, "@b:them.test")
		slices.Sort(users)
		if err != nil || !slices.Equal(users, []string{"@a:us.test", "@b:them.test"}) {
			t.Errorf("UsersSharingRoomWith = %v, %v", users, err)
		}
		for _, c := range []struct {
			user, server string
			want         bool
		}{
			{"@b:them.test", "us.test", true},
			{"@c:them.test", "us.test", false},
			{"@b:them.test", "s.test", false}, // not a suffix match on "us.test"
			{"@d:x_y.test", "x_y.test", true},
			{"@d:x_y.test", "xzy.test", false}, // _ is not a wildcard
		} {
			if got, err := db.SharesRoomWithServer(ctx, c.user, c.server); err != nil || got != c.want {
				t.Errorf("SharesRoomWithServer(%s, %s) = %v, %v, want %v", c.user, c.server, got, err, c.want)
			}
		}
	})
}
