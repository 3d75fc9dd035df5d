package search

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// backfill stores a message of sender, older than anything the room
// holds, as history received late (roomserver.InputHistorical, as the
// federation's backfill does): it gets a position below every other. Its
// parent is after (an event of the room), and its auth events are
// after's.
func (st *stack) backfill(roomID, after, sender, body string) (eventID string, pos int64) {
	st.t.Helper()
	ctx := context.Background()
	parent, err := st.rs.Event(ctx, after)
	if err != nil {
		st.t.Fatal(err)
	}
	content, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": body})
	keyID, key := st.ring.Current()
	ev, err := pdu.ProtoEvent{Type: "m.room.message", Sender: sender, RoomID: roomID, Content: content,
		PrevEvents: []string{after}, AuthEvents: parent.Event.AuthEventIDs(), Depth: parent.Event.Depth() + 1,
		OriginServerTS: time.Now().UnixMilli()}.Build(parent.Event.Version(), us, keyID, key)
	if err != nil {
		st.t.Fatal(err)
	}
	// Its auth events come with it, as the auth chain of a /backfill answer.
	state, err := st.rs.StateAfter(ctx, after)
	if err != nil {
		st.t.Fatal(err)
	}
	if n, err := st.rs.InputHistorical(ctx, roomID, []*pdu.Event{ev}, state); err != nil || n != 1 {
		st.t.Fatalf("backfill: %d events stored, %v", n, err)
	}
	recs, err := st.db.EventsByID(ctx, []string{ev.EventID()})
	if err != nil || len(recs) != 1 || recs[0].StreamPos >= 0 {
		st.t.Fatalf("the backfilled event: %v, %v", recs, err)
	}
	return ev.EventID(), recs[0].StreamPos
}

// findEventually searches like find until it finds want (the backfilled
// history is not published: the indexer finds it when woken for something
// else or by its timer), and fails after a while.
func findEventually(t *testing.T, ix *Index, db *storage.DB, roomID, term string, want []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := find(t, ix, db, roomID, term)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("found %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIndexBackfilledHistory: history received late, at negative
// positions, is indexed: found in the recent order after what the room
// held before (page by page), limited to the positions the searcher may
// see, kept across a restart without being indexed twice, and rebuilt.
func TestIndexBackfilledHistory(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db)
		ctx := context.Background()
		alice := "@alice:" + us
		roomID := st.createRoom(alice)
		present := st.send(roomID, alice, "a present walrus")
		ix := st.open()
		if got := find(t, ix, db, roomID, "walrus"); !slices.Equal(got, []string{present}) {
			t.Fatalf("before the backfill: %v", got)
		}

		// Backfilled while the index runs; a new message wakes the indexer.
		old, oldPos := st.backfill(roomID, present, alice, "an old walrus")
		st.send(roomID, alice, "nudge")
		findEventually(t, ix, db, roomID, "walrus", []string{present, old})
		older, olderPos := st.backfill(roomID, present, alice, "an older walrus")
		if olderPos >= oldPos {
			t.Fatalf("positions of the backfilled events: %d, then %d", oldPos, olderPos)
		}
		// Nothing new sent: found on Wake (or by the indexer's timer).
		ix.Wake()
		findEventually(t, ix, db, roomID, "walrus", []string{present, old, older})

		// Pages of the recent order go on below zero.
		page := func(after *Cursor, visible []storage.PosRange) []string {
			t.Helper()
			res, err := ix.Search(ctx, Query{Term: ParseTerm("walrus"), Recent: true, Limit: 1, After: after,
				Rooms: []Room{{RoomID: roomID, Visible: visible}}})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, h := range res.Hits {
				ids = append(ids, h.EventID)
			}
			return ids
		}
		if got := page(&Cursor{Pos: oldPos}, storage.AllPositions); !slices.Equal(got, []string{older}) {
			t.Fatalf("the page after the old walrus: %v", got)
		}
		// Visibility ranges below zero, as relations.Ranges makes them
		// from the backfilled history's membership and visibility events.
		if got := page(nil, []storage.PosRange{{After: math.MinInt64, Upto: olderPos}}); !slices.Equal(got, []string{older}) {
			t.Fatalf("visible up to the older walrus: %v", got)
		}
		if got := page(nil, []storage.PosRange{{After: olderPos, Upto: oldPos}}); !slices.Equal(got, []string{old}) {
			t.Fatalf("visible from the older walrus to the old one: %v", got)
		}
		if got := page(nil, []storage.PosRange{{After: oldPos, Upto: 0}}); len(got) != 0 {
			t.Fatalf("visible from the old walrus to 0: %v", got)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}

		// Backfilled while no index runs: found after a restart, and what
		// was indexed is not indexed again.
		oldest, _ := st.backfill(roomID, present, alice, "the oldest walrus")
		ix = st.open()
		findEventually(t, ix, db, roomID, "walrus", []string{present, old, older, oldest})
		if n, err := ix.idx.DocCount(); err != nil || n != 5 {
			t.Fatalf("%d documents in the index (%v), want 5: the four walruses and the nudge", n, err)
		}
		// The directory deleted: rebuilt from the database.
		ix = st.reopenEmpty(ix)
		defer ix.Close()
		findEventually(t, ix, db, roomID, "walrus", []string{present, old, older, oldest})
	})
}
