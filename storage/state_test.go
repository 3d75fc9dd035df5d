package storage_test

import (
	"context"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// A room whose 10,000 members join one by one: each join is one state
// change over the previous snapshot. The snapshots must store O(log n)
// entries per change, not the member list, keep chains within
// 1 + log2(n), and read back exactly the state they were given.
func TestSnapshotDeltasStayCompact(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const members = 10000
		var roomNID int64
		snaps := make([]int64, 0, members+1)
		models := map[int]storage.StateMap{}
		checkAt := map[int]bool{1: true, 2: true, 3: true, 64: true, 1000: true, 4095: true, 4096: true, 7777: true, members: true}
		model := storage.StateMap{}
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			var err error
			if roomNID, err = tx.InsertRoom(ctx, "!compact:test", "11"); err != nil {
				return err
			}
			// The create event, power levels, join rules: a full snapshot.
			model = storage.StateMap{1: 1, 2: 2, 3: 3}
			snap, err := tx.NewSnapshot(ctx, roomNID, 0, model)
			if err != nil {
				return err
			}
			snaps = append(snaps, snap)
			for i := 1; i <= members; i++ {
				key, ev := int64(100+i), int64(100+i)
				change := storage.StateMap{key: ev}
				if i%100 == 0 {
					// Now and then a key changes or disappears instead.
					change = storage.StateMap{2: ev, int64(100 + i - 50): 0}
				}
				if snap, err = tx.NewSnapshot(ctx, roomNID, snap, change); err != nil {
					return err
				}
				for k, v := range change {
					if v == 0 {
						delete(model, k)
					} else {
						model[k] = v
					}
				}
				snaps = append(snaps, snap)
				if checkAt[i] {
					models[i] = copyState(model)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range models {
			got, err := db.Snapshot(ctx, snaps[i])
			if err != nil {
				t.Fatal(err)
			}
			if !sameState(got, want) {
				t.Fatalf("snapshot after change %d: %d keys, want %d (or different events)", i, len(got), len(want))
			}
			chain, _, err := db.SnapshotStats(ctx, snaps[i])
			if err != nil {
				t.Fatal(err)
			}
			if bound := 1 + bits.Len(uint(i)); chain > bound {
				t.Errorf("snapshot after change %d: chain of %d, bound %d", i, chain, bound)
			}
		}
		nSnaps, entries, err := db.RoomSnapshotEntries(ctx, roomNID)
		if err != nil {
			t.Fatal(err)
		}
		// Fenwick deltas: sum of lowbit(n) for n <= N is about N/2 log2 N.
		perChange := float64(entries) / members
		t.Logf("%d snapshots, %d entries in all (%.1f per state change; a full copy per change would be %d in all)",
			nSnaps, entries, perChange, members*members/2)
		if perChange > 10 {
			t.Errorf("%.1f entries per state change, want O(log n) (<= 10 for 10,000)", perChange)
		}

		// Point lookups agree with full reads.
		r := rand.New(rand.NewPCG(1, 2))
		for range 20 {
			i := r.IntN(members) + 1
			full, err := db.Snapshot(ctx, snaps[i])
			if err != nil {
				t.Fatal(err)
			}
			keys := []int64{2, int64(100 + r.IntN(members)), int64(100 + i)}
			got, err := db.SnapshotLookup(ctx, snaps[i], keys)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if got[k] != full[k] {
					t.Fatalf("lookup of key %d in snapshot %d: %d, full read says %d", k, i, got[k], full[k])
				}
			}
		}
	})
}

// Two snapshots forking from one parent stay independent.
func TestSnapshotForks(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			room, err := tx.InsertRoom(ctx, "!fork:test", "11")
			if err != nil {
				return err
			}
			base, err := tx.NewSnapshot(ctx, room, 0, storage.StateMap{1: 1, 2: 2})
			if err != nil {
				return err
			}
			a, err := tx.NewSnapshot(ctx, room, base, storage.StateMap{3: 3})
			if err != nil {
				return err
			}
			b, err := tx.NewSnapshot(ctx, room, base, storage.StateMap{2: 0, 4: 4})
			if err != nil {
				return err
			}
			a2, err := tx.NewSnapshot(ctx, room, a, storage.StateMap{1: 5})
			if err != nil {
				return err
			}
			for _, c := range []struct {
				snap int64
				want storage.StateMap
			}{
				{base, storage.StateMap{1: 1, 2: 2}},
				{a, storage.StateMap{1: 1, 2: 2, 3: 3}},
				{b, storage.StateMap{1: 1, 4: 4}},
				{a2, storage.StateMap{1: 5, 2: 2, 3: 3}},
			} {
				got, err := tx.Snapshot(ctx, c.snap)
				if err != nil {
					return err
				}
				if !sameState(got, c.want) {
					t.Errorf("snapshot %d = %v, want %v", c.snap, got, c.want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func copyState(s storage.StateMap) storage.StateMap {
	out := make(storage.StateMap, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

func sameState(a, b storage.StateMap) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
