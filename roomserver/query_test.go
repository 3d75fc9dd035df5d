package roomserver

import (
	"fmt"
	"testing"

	"github.com/myelin-chat/myelin/storage"
)

// The storage reads that /sync and /messages build on, over events the
// roomserver wrote.
func TestTimelineReads(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice, bob := user("alice"), user("bob")
		roomA, createA := e.createRoom("11", alice)
		roomB, _ := e.createRoom("11", alice)
		start := createA[len(createA)-1].StreamPos

		var msgs []Output
		for i := range 10 {
			msgs = append(msgs, e.send(roomA, msgReq(t, alice, fmt.Sprint(i)))[0])
		}
		bobJoin := e.join(roomA, bob)
		afterJoin := e.send(roomA, msgReq(t, bob, "hi"))[0]
		bobLeave := e.send(roomA, memberReq(t, bob, bob, "leave"))[0]
		e.send(roomB, msgReq(t, alice, "other room"))
		end, _ := e.db.StreamPos(ctx)

		// EventsInRange: forwards from a position, backwards from the end.
		fwd, err := e.db.EventsInRange(ctx, roomA, msgs[2].StreamPos, end, 3, false)
		if err != nil || len(fwd) != 3 || fwd[0].EventID != msgs[3].Event.EventID() || fwd[2].EventID != msgs[5].Event.EventID() {
			t.Errorf("EventsInRange forwards: %v, %v", ids(fwd), err)
		}
		back, err := e.db.EventsInRange(ctx, roomA, start, end, 2, true)
		if err != nil || len(back) != 2 || back[0].EventID != bobLeave.Event.EventID() || back[1].EventID != afterJoin.Event.EventID() {
			t.Errorf("EventsInRange backwards: %v, %v", ids(back), err)
		}
		if all, _ := e.db.EventsInRange(ctx, roomA, start, end, 0, false); len(all) != 13 {
			t.Errorf("EventsInRange without limit: %d events, want 13", len(all))
		}

		rooms, err := e.db.RoomsWithEventsInRange(ctx, []string{roomA, roomB, "!unknown:x"}, bobLeave.StreamPos, end)
		if err != nil || len(rooms) != 1 || rooms[0] != roomB {
			t.Errorf("RoomsWithEventsInRange = %v, %v", rooms, err)
		}

		// RoomMessages forwards from the start and backwards from a sync
		// position meet without repeats or gaps.
		var forwards []string
		for from := storage.TopoMin; ; {
			page, err := e.db.RoomMessages(ctx, roomA, from, 4, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			forwards = append(forwards, ids(page)...)
			from = page[len(page)-1].Pos()
		}
		if len(forwards) != 5+13 {
			t.Errorf("forwards pagination: %d events, want 18", len(forwards))
		}
		at, err := e.db.TopoPosAt(ctx, roomA, bobJoin.StreamPos)
		if err != nil {
			t.Fatal(err)
		}
		page, err := e.db.RoomMessages(ctx, roomA, at, 2, true)
		if err != nil || len(page) != 2 || page[0].EventID != bobJoin.Event.EventID() || page[1].EventID != msgs[9].Event.EventID() {
			t.Errorf("backwards from the join's position: %v, %v", ids(page), err)
		}

		// Membership changes of bob between two positions.
		changes, err := e.db.MembershipChanges(ctx, bob, start, end)
		if err != nil || len(changes) != 2 || changes[0].Membership != "join" || changes[1].Membership != "leave" {
			t.Errorf("MembershipChanges = %v, %v", ids(changes), err)
		}
		if changes, _ := e.db.MembershipChanges(ctx, bob, bobJoin.StreamPos, end); len(changes) != 1 {
			t.Errorf("MembershipChanges after the join: %d, want 1", len(changes))
		}

		// The state at a position.
		state, err := e.db.RoomStateAt(ctx, roomA, afterJoin.StreamPos)
		if err != nil {
			t.Fatal(err)
		}
		membership := ""
		for _, s := range state {
			if s.Type == "m.room.member" && s.StateKey != nil && *s.StateKey == bob {
				membership = s.Membership
			}
		}
		if membership != "join" || len(state) != 6 {
			t.Errorf("state at bob's message: %d events, bob %q", len(state), membership)
		}
		if now, _ := e.rs.StateAtPos(ctx, roomA, end); len(now) != 6 {
			t.Errorf("state now: %d events", len(now))
		}
		if m, _ := e.rs.Membership(ctx, roomA, bob); m != "leave" {
			t.Errorf("bob's membership now %q", m)
		}
		if rs, _ := e.rs.RoomsForUser(ctx, bob, "join"); len(rs) != 0 {
			t.Errorf("bob joined to %v after leaving", rs)
		}
		if rs, _ := e.rs.RoomsForUser(ctx, bob); len(rs) != 1 {
			t.Errorf("bob has memberships in %v, want roomA (leave)", rs)
		}
	})
}

func ids(recs []*storage.EventRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.EventID
	}
	return out
}
