package storage_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestAliases(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.CreateAlias(ctx, "#a:hs", "!r1:hs", "@u:hs"); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAlias(ctx, "#b:hs", "!r1:hs", "@v:hs"); err != nil {
			t.Fatal(err)
		}
		// Taken: refused, and the mapping is unchanged.
		if err := db.CreateAlias(ctx, "#a:hs", "!r2:hs", "@v:hs"); !errors.Is(err, storage.ErrAliasExists) {
			t.Fatalf("duplicate CreateAlias = %v, want ErrAliasExists", err)
		}
		a, err := db.GetAlias(ctx, "#a:hs")
		if err != nil {
			t.Fatal(err)
		}
		if *a != (storage.RoomAlias{Alias: "#a:hs", RoomID: "!r1:hs", Creator: "@u:hs"}) {
			t.Errorf("GetAlias = %+v", a)
		}
		if _, err := db.GetAlias(ctx, "#nope:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAlias(unknown) = %v, want ErrNotFound", err)
		}
		got, err := db.AliasesForRoom(ctx, "!r1:hs")
		if err != nil || !slices.Equal(got, []string{"#a:hs", "#b:hs"}) {
			t.Errorf("AliasesForRoom = %v, %v", got, err)
		}
		if got, err := db.AliasesForRoom(ctx, "!none:hs"); err != nil || got == nil || len(got) != 0 {
			t.Errorf("AliasesForRoom(no aliases) = %#v, %v; want an empty, non-nil list", got, err)
		}

		n, err := db.MoveAliases(ctx, "!r1:hs", "!r2:hs")
		if err != nil || n != 2 {
			t.Fatalf("MoveAliases = %d, %v", n, err)
		}
		if a, _ := db.GetAlias(ctx, "#b:hs"); a == nil || a.RoomID != "!r2:hs" || a.Creator != "@v:hs" {
			t.Errorf("after the move #b = %+v", a)
		}

		if err := db.DeleteAlias(ctx, "#a:hs"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteAlias(ctx, "#a:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second DeleteAlias = %v, want ErrNotFound", err)
		}
		if _, err := db.GetAlias(ctx, "#a:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAlias after delete = %v", err)
		}
	})
}

func TestAliasReservation(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.ReserveAlias(ctx, "#r:hs", "@u:hs"); err != nil {
			t.Fatal(err)
		}
		// A fresh reservation holds the alias against both kinds of insert
		// but resolves to nothing and cannot be deleted as a mapping.
		if err := db.ReserveAlias(ctx, "#r:hs", "@v:hs"); !errors.Is(err, storage.ErrAliasExists) {
			t.Errorf("second ReserveAlias = %v, want ErrAliasExists", err)
		}
		if err := db.CreateAlias(ctx, "#r:hs", "!x:hs", "@v:hs"); !errors.Is(err, storage.ErrAliasExists) {
			t.Errorf("CreateAlias over a reservation = %v, want ErrAliasExists", err)
		}
		if _, err := db.GetAlias(ctx, "#r:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAlias(reserved) = %v, want ErrNotFound", err)
		}
		if err := db.DeleteAlias(ctx, "#r:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteAlias(reserved) = %v, want ErrNotFound", err)
		}

		if err := db.CompleteAlias(ctx, "#r:hs", "!room:hs"); err != nil {
			t.Fatal(err)
		}
		if a, err := db.GetAlias(ctx, "#r:hs"); err != nil || a.RoomID != "!room:hs" || a.Creator != "@u:hs" {
			t.Errorf("GetAlias(completed) = %+v, %v", a, err)
		}
		// Releasing a completed alias does nothing; completing twice fails.
		if err := db.ReleaseAlias(ctx, "#r:hs"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetAlias(ctx, "#r:hs"); err != nil {
			t.Errorf("ReleaseAlias removed a completed alias: %v", err)
		}
		if err := db.CompleteAlias(ctx, "#r:hs", "!other:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second CompleteAlias = %v, want ErrNotFound", err)
		}

		// A released reservation frees the alias.
		if err := db.ReserveAlias(ctx, "#s:hs", "@u:hs"); err != nil {
			t.Fatal(err)
		}
		if err := db.ReleaseAlias(ctx, "#s:hs"); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAlias(ctx, "#s:hs", "!y:hs", "@v:hs"); err != nil {
			t.Errorf("CreateAlias after release = %v", err)
		}
	})
}

func TestStaleAliasReservationExpires(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		// A reservation left by a process that died long ago.
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ('#old:hs', '', '@dead:hs', 1000)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAlias(ctx, "#old:hs", "!z:hs", "@u:hs"); err != nil {
			t.Fatalf("CreateAlias over a stale reservation = %v", err)
		}
		if a, err := db.GetAlias(ctx, "#old:hs"); err != nil || a.RoomID != "!z:hs" || a.Creator != "@u:hs" {
			t.Errorf("GetAlias = %+v, %v", a, err)
		}
	})
}
