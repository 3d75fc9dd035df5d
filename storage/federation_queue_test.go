package storage_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestFederationQueue(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const a, b = "a.test", "b.test:8448"
		for i := int64(1); i <= 120; i++ {
			room := fmt.Sprintf("!r%d:us", i%3)
			ev := fmt.Sprintf("$e%d", i)
			if err := db.EnqueuePDUs(ctx, []storage.QueuedPDU{{Destination: a, Pos: i, RoomID: room, EventID: ev}, {Destination: b, Pos: i, RoomID: room, EventID: ev}}); err != nil {
				t.Fatal(err)
			}
		}
		// A redelivered event is queued once.
		if err := db.EnqueuePDUs(ctx, []storage.QueuedPDU{{Destination: a, Pos: 1, RoomID: "!r1:us", EventID: "$e1"}}); err != nil {
			t.Fatal(err)
		}
		if n, err := db.QueuedPDUCount(ctx, a); err != nil || n != 120 {
			t.Fatalf("count: %d, %v", n, err)
		}
		dests, err := db.QueueDestinations(ctx)
		if err != nil || !slices.Equal(dests, []string{a, b}) {
			t.Fatalf("destinations: %v, %v", dests, err)
		}

		batch, err := db.QueuedPDUs(ctx, a, 50)
		if err != nil || len(batch) != 50 {
			t.Fatalf("batch: %d, %v", len(batch), err)
		}
		if batch[0].Pos != 1 || batch[49].Pos != 50 || batch[0].EventID != "$e1" || batch[0].RoomID != "!r1:us" {
			t.Fatalf("batch order: first %+v, last %+v", batch[0], batch[49])
		}
		pos := make([]int64, len(batch))
		for i, q := range batch {
			pos[i] = q.Pos
		}
		if err := db.DeleteQueuedPDUs(ctx, a, pos); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.QueuedPDUCount(ctx, a); n != 70 {
			t.Fatalf("after delete: %d rows, want 70", n)
		}
		if n, _ := db.QueuedPDUCount(ctx, b); n != 120 {
			t.Fatalf("the other destination lost rows: %d", n)
		}

		// Catch-up keeps the latest event of each of the 3 rooms.
		dropped, err := db.CollapseQueuedPDUs(ctx, b)
		if err != nil || dropped != 117 {
			t.Fatalf("collapse: %d, %v", dropped, err)
		}
		left, _ := db.QueuedPDUs(ctx, b, 50)
		var ids []string
		for _, q := range left {
			ids = append(ids, q.EventID)
		}
		if !slices.Equal(ids, []string{"$e118", "$e119", "$e120"}) {
			t.Fatalf("after collapse: %v", ids)
		}
		if n, _ := db.QueuedPDUCount(ctx, a); n != 70 {
			t.Fatalf("collapse touched another destination: %d", n)
		}

		// Backoff.
		if f, at, err := db.DestinationBackoff(ctx, a); err != nil || f != 0 || at != 0 {
			t.Fatalf("no backoff: %d %d %v", f, at, err)
		}
		if err := db.SetDestinationBackoff(ctx, a, 1, 1000); err != nil {
			t.Fatal(err)
		}
		if err := db.SetDestinationBackoff(ctx, a, 2, 3000); err != nil {
			t.Fatal(err)
		}
		if f, at, err := db.DestinationBackoff(ctx, a); err != nil || f != 2 || at != 3000 {
			t.Fatalf("backoff: %d %d %v", f, at, err)
		}
		if ds, err := db.BackedOffDestinations(ctx); err != nil || !slices.Equal(ds, []string{a}) {
			t.Fatalf("backed off: %v, %v", ds, err)
		}
		if err := db.SetDestinationBackoff(ctx, a, 0, 0); err != nil {
			t.Fatal(err)
		}
		if f, at, err := db.DestinationBackoff(ctx, a); err != nil || f != 0 || at != 0 {
			t.Fatalf("after reset: %d %d %v", f, at, err)
		}
		if ds, err := db.BackedOffDestinations(ctx); err != nil || len(ds) != 0 {
			t.Fatalf("backed off after reset: %v, %v", ds, err)
		}
	})
}
