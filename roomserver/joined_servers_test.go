package roomserver

import (
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestJoinedServersAt(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		remote := newFakeRemote(t)
		e := newEnvWithRemote(t, dsn, remote)
		ctx := ctxT(t)
		ver, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
		if err != nil {
			t.Fatal(err)
		}
		alice, bob := user("alice"), "@bob:"+remoteServer
		roomID, _ := e.createRoom(ver.ID, alice)
		var auth []*pdu.Event
		for _, k := range []pdu.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}, {Type: "m.room.join_rules"}} {
			if k.Type == "m.room.create" && ver.CreateEventIsRoomID {
				continue
			}
			auth = append(auth, e.stateEvent(roomID, k.Type, k.StateKey))
		}
		join := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
			[]*pdu.Event{e.lastEvent(roomID)}, auth)
		if r := e.input(roomID, join)[0]; r.Output == nil {
			t.Fatalf("remote join: %+v", r)
		}
		recs, err := e.db.EventsByID(ctx, []string{join.EventID()})
		if err != nil || len(recs) != 1 {
			t.Fatalf("the join: %v, %v", recs, err)
		}
		before, err := e.rs.JoinedServersAt(ctx, recs[0].StateBeforeNID)
		if err != nil || !slices.Equal(before, []string{testServer}) {
			t.Errorf("before the join: %v, %v", before, err)
		}
		after, err := e.rs.JoinedServersAt(ctx, recs[0].StateAfterNID)
		if err != nil || !slices.Equal(after, []string{remoteServer, testServer}) {
			t.Errorf("after the join: %v, %v", after, err)
		}
	})
}
