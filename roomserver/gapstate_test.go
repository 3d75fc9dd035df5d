package roomserver

import (
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// An event past a gap comes in with the state before it as another server
// gave it: accepted when that state allows it (and the room forks, to be
// merged by the next event), rejected when it does not, dropped when the
// state is empty.
func TestInputWithState(t *testing.T) {
	forEachRecentVersion(t, func(t *testing.T, e *env, remote *fakeRemote, ver *pdu.RoomVersion) {
		ctx := ctxT(t)
		alice, bob, carol := user("alice"), "@bob:"+remoteServer, "@carol:"+remoteServer
		roomID, _ := e.createRoom(ver.ID, alice)
		create := e.stateEvent(roomID, "m.room.create", "")
		pl := e.stateEvent(roomID, "m.room.power_levels", "")
		jr := e.stateEvent(roomID, "m.room.join_rules", "")
		aliceJoin := e.stateEvent(roomID, "m.room.member", alice)
		var state []*pdu.Event
		for _, k := range []pdu.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"},
			{Type: "m.room.join_rules"}, {Type: "m.room.member", StateKey: alice}, {Type: "m.room.history_visibility"}} {
			if ev, _ := e.rs.CurrentStateEvent(ctx, roomID, k); ev != nil {
				state = append(state, ev)
			}
		}
		authChain := []*pdu.Event{create, pl, jr, aliceJoin}
		last := e.lastEvent(roomID)

		// bob joined and spoke on the remote side; this server
		// never got his join (the gap).
		bobJoin := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
			[]*pdu.Event{last}, []*pdu.Event{orNil(ver, create), pl, jr})
		bobMsg := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "past the gap"},
			[]*pdu.Event{bobJoin}, []*pdu.Event{orNil(ver, create), pl, bobJoin})
		if r := e.input(roomID, bobMsg)[0]; !errors.As(r.Dropped, new(*MissingEventsError)) {
			t.Fatalf("without its prev event: %+v", r)
		}
		res, err := e.rs.InputWithState(ctx, roomID, bobMsg, append(state, bobJoin), append(authChain, bobJoin))
		if err != nil || res.Output == nil {
			t.Fatalf("with the state before it: %+v %v", res, err)
		}
		// The room forked (this server's side and bob's message);
		// bob's join is in the resolved current state.
		if m, _ := e.rs.Membership(ctx, roomID, bob); m != "join" {
			t.Errorf("bob's membership after the gap: %q", m)
		}
		merge := e.send(roomID, msgReq(t, alice, "merge"))[0]
		if prev := merge.Event.PrevEventIDs(); len(prev) != 2 {
			t.Errorf("the next event cites %v, want both sides of the gap", prev)
		}

		// carol, who never joined, speaks: the state given does
		// not allow it.
		carolMsg := remote.build(t, ver, roomID, carol, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "let me in"},
			[]*pdu.Event{bobMsg}, []*pdu.Event{orNil(ver, create), pl})
		res, err = e.rs.InputWithState(ctx, roomID, carolMsg, append(state, bobJoin), authChain)
		if err != nil || res.Rejected == nil || res.Output != nil {
			t.Errorf("a stranger's event: %+v %v", res, err)
		}
		// No state at all: nothing to judge by.
		lonely := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "?"},
			[]*pdu.Event{bobMsg}, []*pdu.Event{orNil(ver, create), pl, bobJoin})
		res, err = e.rs.InputWithState(ctx, roomID, lonely, nil, nil)
		if err != nil || res.Dropped == nil {
			t.Errorf("an event with no state given: %+v %v", res, err)
		}
	})
}
