package storage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestRoomDirectory(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for _, id := range []string{"!b:hs", "!a:hs", "!b:hs"} { // publishing twice is fine
			if err := db.SetRoomPublished(ctx, id, true); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := db.PublishedRooms(ctx); err != nil || !slices.Equal(got, []string{"!a:hs", "!b:hs"}) {
			t.Errorf("PublishedRooms = %v, %v", got, err)
		}
		if ok, err := db.IsRoomPublished(ctx, "!a:hs"); err != nil || !ok {
			t.Errorf("IsRoomPublished(!a) = %v, %v", ok, err)
		}
		for range 2 { // unpublishing twice is fine
			if err := db.SetRoomPublished(ctx, "!a:hs", false); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := db.IsRoomPublished(ctx, "!a:hs"); err != nil || ok {
			t.Errorf("IsRoomPublished(!a) after unpublishing = %v, %v", ok, err)
		}
		if got, err := db.PublishedRooms(ctx); err != nil || !slices.Equal(got, []string{"!b:hs"}) {
			t.Errorf("PublishedRooms = %v, %v", got, err)
		}
	})
}

// setMember stores a member event of user in the room at stream position
// pos and makes it the user's current membership.
func setMember(t *testing.T, db *storage.DB, roomID, user, membership string, pos int64) {
	t.Helper()
	ctx := context.Background()
	err := db.WithTx(ctx, func(tx *storage.Tx) error {
		room, err := tx.Room(ctx, roomID)
		if errors.Is(err, storage.ErrNotFound) {
			nid, err := tx.InsertRoom(ctx, roomID, "11")
			if err != nil {
				return err
			}
			room = &storage.Room{NID: nid}
		} else if err != nil {
			return err
		}
		k := storage.StateKey{Type: "m.room.member", StateKey: user}
		nids, err := tx.StateKeyNIDs(ctx, []storage.StateKey{k}, true)
		if err != nil {
			return err
		}
		evNID, err := tx.InsertEvent(ctx, &storage.EventRecord{
			EventID: fmt.Sprintf("$%s%d", membership, pos), RoomNID: room.NID, Type: k.Type,
			StateKeyNID: nids[k], Sender: user, StreamPos: pos, Membership: membership, JSON: []byte("{}"),
		})
		if err != nil {
			return err
		}
		return tx.SetMembership(ctx, room.NID, user, membership, evNID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestForgottenRooms(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.ForgetRoom(ctx, "@u:hs", "!r:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ForgetRoom without a membership = %v, want ErrNotFound", err)
		}
		setMember(t, db, "!r:hs", "@u:hs", "leave", 10)
		setMember(t, db, "!s:hs", "@u:hs", "leave", 12)
		setMember(t, db, "!s:hs", "@v:hs", "join", 13)
		for _, r := range []string{"!r:hs", "!s:hs"} {
			if err := db.ForgetRoom(ctx, "@u:hs", r); err != nil {
				t.Fatal(err)
			}
		}
		check := func(want ...string) {
			t.Helper()
			got, err := db.ForgottenRooms(ctx, "@u:hs")
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("ForgottenRooms = %v, %v; want %v", got, err, want)
			}
			for _, r := range []string{"!r:hs", "!s:hs", "!x:hs"} {
				ok, err := db.IsRoomForgotten(ctx, "@u:hs", r)
				if err != nil || ok != slices.Contains(want, r) {
					t.Errorf("IsRoomForgotten(%s) = %v, %v", r, ok, err)
				}
			}
		}
		check("!r:hs", "!s:hs")
		if got, err := db.ForgottenRooms(ctx, "@v:hs"); err != nil || len(got) != 0 {
			t.Errorf("ForgottenRooms(other user) = %v, %v", got, err)
		}

		// A new membership event (re-invited) ends the forgetting...
		setMember(t, db, "!r:hs", "@u:hs", "invite", 20)
		check("!s:hs")
		// ... and a later leave does not bring it back without a new forget.
		setMember(t, db, "!r:hs", "@u:hs", "leave", 21)
		check("!s:hs")
		if err := db.ForgetRoom(ctx, "@u:hs", "!r:hs"); err != nil {
			t.Fatal(err)
		}
		check("!r:hs", "!s:hs")
	})
}
