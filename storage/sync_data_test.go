package storage_test

// Tests of the sync engineer's per-user tables: filters, account data,
// receipts and presence.

import (
	"context"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestFilters(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		id1, err := db.PutFilter(ctx, "@a:x", []byte(`{"room":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		again, err := db.PutFilter(ctx, "@a:x", []byte(`{"room":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		if again != id1 {
			t.Errorf("same filter stored twice got IDs %q and %q", id1, again)
		}
		other, err := db.PutFilter(ctx, "@b:x", []byte(`{"room":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		if other == id1 {
			t.Errorf("two users share filter ID %q", id1)
		}
		got, err := db.GetFilter(ctx, "@a:x", id1)
		if err != nil || string(got) != `{"room":{}}` {
			t.Errorf("GetFilter = %q, %v", got, err)
		}
		for _, bad := range []struct{ user, id string }{{"@b:x", id1}, {"@a:x", "999"}, {"@a:x", "abc"}, {"@a:x", "-1"}, {"@a:x", ""}} {
			if _, err := db.GetFilter(ctx, bad.user, bad.id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetFilter(%q, %q) error = %v, want ErrNotFound", bad.user, bad.id, err)
			}
		}
	})
}

func TestAccountData(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		set := func(user, room, typ, content string) int64 {
			t.Helper()
			var pos int64
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				pos, err = tx.SetAccountData(ctx, user, room, typ, []byte(content))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return pos
		}
		p1 := set("@a:x", "", "m.test", `{"v":1}`)
		p2 := set("@a:x", "!r:x", "m.test", `{"v":2}`)
		p3 := set("@a:x", "", "m.test", `{"v":3}`)
		set("@b:x", "", "m.test", `{"v":4}`)
		if !(p1 < p2 && p2 < p3) {
			t.Fatalf("positions %d %d %d do not increase", p1, p2, p3)
		}
		got, err := db.GetAccountData(ctx, "@a:x", "", "m.test")
		if err != nil || string(got) != `{"v":3}` {
			t.Errorf("global = %q, %v", got, err)
		}
		got, err = db.GetAccountData(ctx, "@a:x", "!r:x", "m.test")
		if err != nil || string(got) != `{"v":2}` {
			t.Errorf("room = %q, %v", got, err)
		}
		if _, err := db.GetAccountData(ctx, "@a:x", "!other:x", "m.test"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("missing room data error = %v", err)
		}
		all, err := db.AccountDataSince(ctx, "@a:x", 0, p3)
		if err != nil || len(all) != 2 || all[0].RoomID != "!r:x" || all[1].StreamPos != p3 {
			t.Errorf("AccountDataSince(0) = %+v, %v", all, err)
		}
		recent, err := db.AccountDataSince(ctx, "@a:x", p2, p3)
		if err != nil || len(recent) != 1 || string(recent[0].Content) != `{"v":3}` {
			t.Errorf("AccountDataSince(p2) = %+v, %v", recent, err)
		}
		none, err := db.AccountDataSince(ctx, "@a:x", p1, p1)
		if err != nil || len(none) != 0 {
			t.Errorf("AccountDataSince(p1, p1) = %+v, %v", none, err)
		}
	})
}

func TestReceipts(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		put := func(r storage.Receipt) int64 {
			t.Helper()
			var pos int64
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				pos, err = tx.PutReceipt(ctx, r)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return pos
		}
		r := storage.Receipt{RoomID: "!r:x", Type: "m.read", UserID: "@a:x", EventID: "$5", EventPos: 5, TS: 100}
		p1 := put(r)
		if p1 == 0 {
			t.Fatal("first receipt not stored")
		}
		older := r
		older.EventID, older.EventPos = "$3", 3
		if p := put(older); p != 0 {
			t.Errorf("a receipt for an older event moved the receipt back (pos %d)", p)
		}
		threaded := r
		threaded.ThreadID, threaded.EventID, threaded.EventPos = "main", "$4", 4
		p2 := put(threaded)
		newer := r
		newer.EventID, newer.EventPos = "$7", 7
		p3 := put(newer)
		put(storage.Receipt{RoomID: "!other:x", Type: "m.read", UserID: "@a:x", EventID: "$9", EventPos: 9})
		if p2 == 0 || p3 <= p2 {
			t.Fatalf("positions %d %d", p2, p3)
		}
		all, err := db.ReceiptsSince(ctx, []string{"!r:x"}, 0, p3)
		if err != nil || len(all) != 2 {
			t.Fatalf("ReceiptsSince(0) = %+v, %v", all, err)
		}
		for _, got := range all {
			if got.ThreadID == "" && got.EventID != "$7" || got.ThreadID == "main" && got.EventID != "$4" {
				t.Errorf("receipt %+v", got)
			}
		}
		recent, err := db.ReceiptsSince(ctx, []string{"!r:x"}, p2, p3+10)
		if err != nil || len(recent) != 1 || recent[0].EventID != "$7" || recent[0].StreamPos != p3 {
			t.Errorf("ReceiptsSince(p2) = %+v, %v", recent, err)
		}
		if none, err := db.ReceiptsSince(ctx, nil, 0, p3); err != nil || len(none) != 0 {
			t.Errorf("ReceiptsSince(no rooms) = %+v, %v", none, err)
		}
	})
}

func TestPresence(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, err := db.GetPresence(ctx, "@a:x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetPresence before any = %v", err)
		}
		put := func(p storage.Presence, newPos bool) int64 {
			t.Helper()
			var pos int64
			if err := db.WithTx(ctx, func(tx *storage.Tx) error {
				var err error
				pos, err = tx.PutPresence(ctx, p, newPos)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return pos
		}
		msg := "lunch"
		p1 := put(storage.Presence{UserID: "@a:x", State: "online", StatusMsg: &msg, LastActiveTS: 10, CurrentlyActive: true}, true)
		if p := put(storage.Presence{UserID: "@a:x", State: "online", StatusMsg: &msg, LastActiveTS: 20, CurrentlyActive: true}, false); p != 0 {
			t.Errorf("a bump took position %d", p)
		}
		got, err := db.GetPresence(ctx, "@a:x")
		if err != nil || got.State != "online" || got.StatusMsg == nil || *got.StatusMsg != "lunch" || got.LastActiveTS != 20 || got.StreamPos != p1 {
			t.Errorf("GetPresence = %+v, %v", got, err)
		}
		p2 := put(storage.Presence{UserID: "@b:x", State: "unavailable", LastActiveTS: 30}, true)
		// @b:x shares no room with @a:x: only a's own presence is visible.
		mine, err := db.PresenceVisibleTo(ctx, "@a:x", 0, p2)
		if err != nil || len(mine) != 1 || mine[0].UserID != "@a:x" {
			t.Errorf("PresenceVisibleTo = %+v, %v", mine, err)
		}
		theirs, err := db.PresenceVisibleTo(ctx, "@b:x", p1, p2)
		if err != nil || len(theirs) != 1 || theirs[0].UserID != "@b:x" || theirs[0].StatusMsg != nil {
			t.Errorf("PresenceVisibleTo(b) = %+v, %v", theirs, err)
		}
		if shares, err := db.SharesRoom(ctx, "@a:x", "@b:x"); err != nil || shares {
			t.Errorf("SharesRoom = %v, %v", shares, err)
		}
		stale, err := db.StalePresence(ctx, 15, 10)
		if err != nil || len(stale) != 0 {
			t.Errorf("StalePresence(15) = %v, %v", stale, err)
		}
		stale, err = db.StalePresence(ctx, 25, 10)
		if err != nil || len(stale) != 1 || stale[0] != "@a:x" {
			t.Errorf("StalePresence(25) = %v, %v", stale, err)
		}
	})
}
