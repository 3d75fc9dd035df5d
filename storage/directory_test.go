package storage_test

import (
	"context"
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

func TestForgottenRooms(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.ForgetRoom(ctx, "@u:hs", "!r:hs", 10); err != nil {
			t.Fatal(err)
		}
		if err := db.ForgetRoom(ctx, "@u:hs", "!s:hs", 12); err != nil {
			t.Fatal(err)
		}
		got, err := db.ForgottenRooms(ctx, "@u:hs")
		if err != nil || len(got) != 2 || got["!r:hs"] != 10 || got["!s:hs"] != 12 {
			t.Errorf("ForgottenRooms = %v, %v", got, err)
		}
		if got, err := db.ForgottenRooms(ctx, "@other:hs"); err != nil || len(got) != 0 {
			t.Errorf("ForgottenRooms(other user) = %v, %v", got, err)
		}
		for _, c := range []struct {
			room string
			pos  int64
			want bool
		}{
			{"!r:hs", 10, true},  // still the membership it was forgotten at
			{"!r:hs", 11, false}, // a later membership event ends it
			{"!x:hs", 1, false},  // never forgotten
		} {
			if ok, err := db.IsForgotten(ctx, "@u:hs", c.room, c.pos); err != nil || ok != c.want {
				t.Errorf("IsForgotten(%s, %d) = %v, %v; want %v", c.room, c.pos, ok, err, c.want)
			}
		}
		// Forgetting again after a new leave moves the position.
		if err := db.ForgetRoom(ctx, "@u:hs", "!r:hs", 20); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.IsForgotten(ctx, "@u:hs", "!r:hs", 20); !ok {
			t.Error("re-forgotten room is not forgotten")
		}
	})
}
