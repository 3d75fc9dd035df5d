package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// EventNearTimestamp: the closest timeline event in each direction, ties
// in stream order, events outside the timeline skipped, the upTo bound,
// and nothing outside the room's range or in another room.
func TestEventNearTimestamp(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		type ev struct {
			id        string
			ts        int64
			streamPos bool
			rejected  bool
			outlier   bool
		}
		// In timeline order. $c1 and $c2 share a millisecond.
		evs := []ev{
			{id: "$a", ts: 100, streamPos: true},
			{id: "$rejected", ts: 150, rejected: true},
			{id: "$outlier", ts: 160, outlier: true},
			{id: "$softfailed", ts: 170},
			{id: "$b", ts: 200, streamPos: true},
			{id: "$c1", ts: 300, streamPos: true},
			{id: "$c2", ts: 300, streamPos: true},
			{id: "$d", ts: 400, streamPos: true},
			// An event whose clock ran behind: timestamps need not follow
			// the timeline.
			{id: "$late", ts: 250, streamPos: true},
		}
		pos := map[string]int64{}
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			room, err := tx.InsertRoom(ctx, "!ts:test", "11")
			if err != nil {
				return err
			}
			other, err := tx.InsertRoom(ctx, "!other:test", "11")
			if err != nil {
				return err
			}
			if _, err := tx.InsertEvent(ctx, &storage.EventRecord{EventID: "$elsewhere", RoomNID: other, Type: "m.room.message",
				Sender: "@a:test", Depth: 1, OriginServerTS: 220, StreamPos: mustPos(ctx, t, tx), JSON: []byte(`{}`)}); err != nil {
				return err
			}
			for i, e := range evs {
				rec := &storage.EventRecord{EventID: e.id, RoomNID: room, Type: "m.room.message", Sender: "@a:test",
					Depth: int64(i + 1), OriginServerTS: e.ts, Rejected: e.rejected, Outlier: e.outlier,
					SoftFailed: !e.streamPos && !e.rejected && !e.outlier, JSON: []byte(`{}`)}
				if e.streamPos {
					rec.StreamPos = mustPos(ctx, t, tx)
					pos[e.id] = rec.StreamPos
				}
				if _, err := tx.InsertEvent(ctx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ts      int64
			forward bool
			upTo    int64
			want    string // "" for none
		}{
			{ts: 100, forward: true, upTo: -1, want: "$a"},
			{ts: 100, forward: false, upTo: -1, want: "$a"},
			{ts: 50, forward: true, upTo: -1, want: "$a"},
			{ts: 50, forward: false, upTo: -1, want: ""},
			{ts: 101, forward: true, upTo: -1, want: "$b"}, // not the rejected, outlier or soft-failed events
			{ts: 199, forward: false, upTo: -1, want: "$a"},
			{ts: 220, forward: false, upTo: -1, want: "$b"}, // not the other room's event
			{ts: 220, forward: true, upTo: -1, want: "$late"},
			{ts: 300, forward: true, upTo: -1, want: "$c1"},  // same millisecond: the earlier
			{ts: 300, forward: false, upTo: -1, want: "$c2"}, // same millisecond: the later
			{ts: 350, forward: false, upTo: -1, want: "$c2"},
			{ts: 401, forward: true, upTo: -1, want: ""},
			{ts: 1 << 62, forward: false, upTo: -1, want: "$d"},
			{ts: 1 << 62, forward: false, upTo: pos["$c1"], want: "$c1"},
			{ts: 301, forward: true, upTo: pos["$c2"], want: ""},
			{ts: 300, forward: true, upTo: pos["$b"], want: ""},
		} {
			t.Run(fmt.Sprintf("ts=%d,forward=%v,upTo=%d", c.ts, c.forward, c.upTo), func(t *testing.T) {
				got, err := db.EventNearTimestamp(ctx, "!ts:test", c.ts, c.forward, c.upTo)
				if err != nil {
					t.Fatal(err)
				}
				gotID := ""
				if got != nil {
					gotID = got.EventID
					if got.RoomID != "!ts:test" {
						t.Errorf("room %q", got.RoomID)
					}
				}
				if gotID != c.want {
					t.Errorf("got %q, want %q", gotID, c.want)
				}
			})
		}
		if got, err := db.EventNearTimestamp(ctx, "!unknown:test", 100, true, -1); got != nil || err != nil {
			t.Errorf("unknown room: %v, %v", got, err)
		}
	})
}

func mustPos(ctx context.Context, t *testing.T, tx *storage.Tx) int64 {
	t.Helper()
	p, err := tx.NextStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
