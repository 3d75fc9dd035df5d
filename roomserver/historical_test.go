package roomserver

import (
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// TestInputHistoricalHeldAuthEvents: backfilled history whose auth events
// this server holds already (the room's state since the join), not sent
// with it, enters the timeline below every other position; one whose auth
// events are neither held nor sent is stored rejected, outside it.
func TestInputHistoricalHeldAuthEvents(t *testing.T) {
	forEachRecentVersion(t, func(t *testing.T, e *env, remote *fakeRemote, ver *pdu.RoomVersion) {
		ctx := ctxT(t)
		alice, bob := user("alice"), "@bob:"+remoteServer
		roomID, _ := e.createRoom(ver.ID, alice)
		create := e.stateEvent(roomID, "m.room.create", "")
		pl := e.stateEvent(roomID, "m.room.power_levels", "")
		jr := e.stateEvent(roomID, "m.room.join_rules", "")
		join := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
			[]*pdu.Event{e.lastEvent(roomID)}, []*pdu.Event{orNil(ver, create), pl, jr})
		if r := e.input(roomID, join)[0]; r.Output == nil {
			t.Fatalf("bob's join: %+v", r)
		}

		old := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "old"},
			[]*pdu.Event{join}, []*pdu.Event{orNil(ver, create), pl, join})
		// Cites a member event this server never saw.
		carol := "@carol:" + remoteServer
		carolJoin := remote.build(t, ver, roomID, carol, "m.room.member", strp(carol), map[string]string{"membership": "join"},
			[]*pdu.Event{join}, []*pdu.Event{orNil(ver, create), pl, jr})
		orphan := remote.build(t, ver, roomID, carol, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "orphan"},
			[]*pdu.Event{carolJoin}, []*pdu.Event{orNil(ver, create), pl, carolJoin})
		n, err := e.rs.InputHistorical(ctx, roomID, []*pdu.Event{old, orphan}, nil)
		if err != nil || n != 1 {
			t.Fatalf("InputHistorical: %d events in the timeline, %v; want 1", n, err)
		}
		recs, err := e.db.EventsByID(ctx, []string{old.EventID(), orphan.EventID()})
		if err != nil || len(recs) != 2 {
			t.Fatalf("stored: %v, %v", recs, err)
		}
		for _, r := range recs {
			switch r.EventID {
			case old.EventID():
				if r.Rejected || r.Outlier || r.StreamPos >= 0 {
					t.Errorf("the old message: rejected %v, outlier %v, position %d", r.Rejected, r.Outlier, r.StreamPos)
				}
			case orphan.EventID():
				if !r.Rejected || r.StreamPos != 0 {
					t.Errorf("the orphan: rejected %v, position %d", r.Rejected, r.StreamPos)
				}
			}
		}
	})
}
