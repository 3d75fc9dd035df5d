package storage_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// ParentsWithChildren finds the parents some relation names, whatever its
// type or room, among more parents than one statement takes.
func TestParentsWithChildren(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		children := map[string]string{"$c1": "$p1", "$c2": "$p1", "$c3": "$p700"}
		if err := db.WithTx(ctx, func(tx *storage.Tx) error {
			nid := int64(0)
			for child, parent := range children {
				nid++
				if err := tx.InsertRelation(ctx, storage.Relation{EventNID: nid, EventID: child, RoomNID: nid,
					RelatesTo: parent, RelType: "m.thread", EventType: "m.room.message", Sender: "@a:x", StreamPos: nid}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var parents []string
		for i := range 1200 {
			parents = append(parents, fmt.Sprint("$p", i))
		}
		got, err := db.ParentsWithChildren(ctx, parents)
		if err != nil {
			t.Fatal(err)
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"$p1", "$p700"}) {
			t.Errorf("parents with children: %v", keys)
		}
	})
}
