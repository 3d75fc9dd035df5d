package roomserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestCreateRoomAndSendInEveryTestedVersion(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice, bob := user("alice"), user("bob")
		for _, ver := range []string{"1", "6", "11", "12"} {
			t.Run("v"+ver, func(t *testing.T) {
				roomID, outs := e.createRoom(ver, alice)
				if len(outs) != 5 {
					t.Fatalf("%d outputs, want 5", len(outs))
				}
				if outs[0].Event.Type() != "m.room.create" || outs[0].Event.RoomID() != roomID {
					t.Fatalf("first output %s in %s, want the create event of %s", outs[0].Event.Type(), outs[0].Event.RoomID(), roomID)
				}
				if ver == "12" && roomID != pdu.RoomIDFromCreateEventID(outs[0].Event.EventID()) {
					t.Errorf("v12 room ID %s is not derived from the create event %s", roomID, outs[0].Event.EventID())
				}
				for i := 1; i < len(outs); i++ {
					if outs[i].StreamPos <= outs[i-1].StreamPos {
						t.Errorf("stream positions not increasing: %d then %d", outs[i-1].StreamPos, outs[i].StreamPos)
					}
					if outs[i].Event.Depth() != outs[i-1].Event.Depth()+1 {
						t.Errorf("depth %d after %d", outs[i].Event.Depth(), outs[i-1].Event.Depth())
					}
					if got := outs[i].Event.PrevEventIDs(); len(got) != 1 || got[0] != outs[i-1].Event.EventID() {
						t.Errorf("prev_events %v, want [%s]", got, outs[i-1].Event.EventID())
					}
				}

				v, err := e.rs.RoomVersion(ctx, roomID)
				if err != nil || v.ID != ver {
					t.Fatalf("RoomVersion = %v, %v", v, err)
				}
				state, err := e.rs.CurrentState(ctx, roomID)
				if err != nil || len(state) != 5 {
					t.Fatalf("CurrentState: %d events, %v; want 5", len(state), err)
				}
				if m, _ := e.rs.Membership(ctx, roomID, alice); m != "join" {
					t.Errorf("alice's membership %q", m)
				}
				if m, _ := e.rs.Membership(ctx, roomID, bob); m != "" {
					t.Errorf("bob's membership %q, want none", m)
				}

				join := e.join(roomID, bob)
				msg := e.send(roomID, msgReq(t, bob, "hello"))[0]
				if msg.StreamPos <= join.StreamPos {
					t.Errorf("message at %d, join at %d", msg.StreamPos, join.StreamPos)
				}
				members, err := e.rs.JoinedMembers(ctx, roomID)
				if err != nil || len(members) != 2 {
					t.Errorf("JoinedMembers = %v, %v", members, err)
				}
				rooms, err := e.rs.RoomsForUser(ctx, bob, "join")
				if err != nil || !contains(rooms, roomID) {
					t.Errorf("RoomsForUser(bob) = %v, %v", rooms, err)
				}
				// The message cites the auth events the selection picks:
				// create (not in v12), power levels, bob's join.
				wantAuth := 3
				if ver == "12" {
					wantAuth = 2
				}
				if n := len(msg.Event.AuthEventIDs()); n != wantAuth {
					t.Errorf("message has %d auth events, want %d", n, wantAuth)
				}

				got, err := e.rs.Event(ctx, msg.Event.EventID())
				if err != nil {
					t.Fatal(err)
				}
				if got.StreamPos != msg.StreamPos || got.RoomID != roomID || got.Redacted || got.Rejected {
					t.Errorf("Event = %+v", got)
				}
				pl, err := e.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.power_levels"})
				if err != nil || pl == nil {
					t.Fatalf("power levels: %v, %v", pl, err)
				}
				none, err := e.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.topic"})
				if err != nil || none != nil {
					t.Errorf("absent topic: %v, %v", none, err)
				}

				before, err := e.rs.StateBefore(ctx, join.Event.EventID())
				if err != nil || len(before) != 5 {
					t.Errorf("state before bob's join: %d events, %v", len(before), err)
				}
				after, err := e.rs.StateAfter(ctx, join.Event.EventID())
				if err != nil || len(after) != 6 {
					t.Errorf("state after bob's join: %d events, %v", len(after), err)
				}
				if _, err := e.rs.Event(ctx, "$nope"); !errors.Is(err, ErrEventNotFound) {
					t.Errorf("unknown event: %v", err)
				}
			})
		}
	})
}

func TestRefusedInputWritesNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice, bob := user("alice"), user("bob")
		roomID, _ := e.createRoom("11", alice)
		e.join(roomID, bob)

		tables := []string{"events", "state_snapshots", "state_snapshot_entries", "room_state",
			"room_memberships", "event_txns", "rooms", "room_forward_extremities"}
		counts := func() map[string]int {
			m := map[string]int{}
			for _, tb := range tables {
				m[tb] = e.countRows(tb)
			}
			return m
		}
		posBefore, _ := e.db.StreamPos(ctx)
		before := counts()

		big := strings.Repeat("x", pdu.MaxEventSize)
		cases := []struct {
			name  string
			room  string
			reqs  []EventRequest
			check func(error) bool
		}{
			{"not a member", roomID, []EventRequest{msgReq(t, user("carol"), "hi")}, isForbidden},
			{"power too low", roomID, []EventRequest{stateReq(t, bob, "m.room.name", "", map[string]string{"name": "x"})}, isForbidden},
			{"kick without power", roomID, []EventRequest{memberReq(t, bob, alice, "leave")}, isForbidden},
			{"other user's state key", roomID, []EventRequest{stateReq(t, alice, "m.room.member", bob, map[string]string{"membership": "join"})}, isForbidden},
			{"second request refused", roomID, []EventRequest{msgReq(t, bob, "ok"), msgReq(t, user("carol"), "no")}, isForbidden},
			{"unknown room", "!nope:" + testServer, []EventRequest{msgReq(t, alice, "hi")}, func(err error) bool { return errors.Is(err, ErrRoomNotFound) }},
			{"too large", roomID, []EventRequest{msgReq(t, alice, big)}, func(err error) bool { return isFormat(err) && errors.Is(err, pdu.ErrTooLarge) }},
			{"type too long", roomID, []EventRequest{{Type: strings.Repeat("t", pdu.MaxIDSize+1), Sender: alice, Content: []byte(`{}`)}},
				func(err error) bool { return isFormat(err) && errors.Is(err, pdu.ErrTooLarge) }},
			{"content not an object", roomID, []EventRequest{{Type: "m.room.message", Sender: alice, Content: []byte(`[1]`)}},
				func(err error) bool { return isFormat(err) && !errors.Is(err, pdu.ErrTooLarge) }},
			{"bad JSON", roomID, []EventRequest{{Type: "m.room.message", Sender: alice, Content: []byte(`{"a":`)}}, isFormat},
			{"remote sender", roomID, []EventRequest{msgReq(t, "@x:elsewhere", "hi")}, isBadRequest},
			{"no type", roomID, []EventRequest{{Sender: alice, Content: []byte(`{}`)}}, isBadRequest},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.rs.Send(ctx, c.room, c.reqs...)
				if err == nil || !c.check(err) {
					t.Fatalf("Send: %v", err)
				}
			})
		}
		// A room whose initial events are refused is not created at all.
		_, _, err := e.rs.CreateRoom(ctx, CreateRoomRequest{Creator: alice,
			Initial: []EventRequest{memberReq(t, alice, alice, "join"), msgReq(t, bob, "not joined")}})
		if !isForbidden(err) {
			t.Fatalf("CreateRoom with a refused initial event: %v", err)
		}
		after := counts()
		for _, tb := range tables {
			if before[tb] != after[tb] {
				t.Errorf("table %s: %d rows before, %d after refused input", tb, before[tb], after[tb])
			}
		}
		posAfter, _ := e.db.StreamPos(ctx)
		if posAfter != posBefore {
			t.Errorf("stream position moved from %d to %d", posBefore, posAfter)
		}
		// And the room still works.
		e.send(roomID, msgReq(t, bob, "still here"))
	})
}

func isForbidden(err error) bool {
	_, ok := errors.AsType[*auth.NotAllowedError](err)
	return ok
}

func isFormat(err error) bool {
	_, ok := errors.AsType[*pdu.FormatError](err)
	return ok
}

func isBadRequest(err error) bool {
	_, ok := errors.AsType[*BadRequestError](err)
	return ok
}

// A second m.room.create event is refused by the auth rules (it has
// prev_events), in every version, and not mistaken for an unknown room;
// a CreateRoom whose initial events hold one creates nothing.
func TestSecondCreateEventRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := user("alice")
		for _, ver := range []string{"1", "11", "12"} {
			t.Run("v"+ver, func(t *testing.T) {
				roomID, _ := e.createRoom(ver, alice)
				posBefore, _ := e.db.StreamPos(ctx)
				for _, sk := range []string{"", "x"} {
					_, err := e.rs.Send(ctx, roomID, stateReq(t, alice, "m.room.create", sk, map[string]string{"room_version": ver}))
					if !isForbidden(err) || errors.Is(err, ErrRoomNotFound) {
						t.Errorf("second create event (state key %q): %v, want refused by the auth rules", sk, err)
					}
				}
				rooms := e.countRows("rooms")
				v, _ := pdu.GetRoomVersion(ver)
				_, _, err := e.rs.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Version: v,
					Initial: []EventRequest{memberReq(t, alice, alice, "join"), stateReq(t, alice, "m.room.create", "", map[string]string{})}})
				if !isForbidden(err) {
					t.Errorf("CreateRoom with a second create event: %v", err)
				}
				if n := e.countRows("rooms"); n != rooms {
					t.Errorf("%d rooms after a refused CreateRoom, want %d", n, rooms)
				}
				if posAfter, _ := e.db.StreamPos(ctx); posAfter != posBefore {
					t.Errorf("stream position moved from %d to %d", posBefore, posAfter)
				}
			})
		}
	})
}
