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

// JoinedServersAfter derives a member event's servers from the cached
// servers before it, and agrees with reading the whole state.
func TestJoinedServersAfterMemberEvents(t *testing.T) {
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
		var base []*pdu.Event
		for _, k := range []pdu.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}, {Type: "m.room.join_rules"}} {
			if k.Type == "m.room.create" && ver.CreateEventIsRoomID {
				continue
			}
			base = append(base, e.stateEvent(roomID, k.Type, k.StateKey))
		}
		join := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
			[]*pdu.Event{e.lastEvent(roomID)}, base)
		// A leave's auth events: create, power levels, the user's member
		// event (no join rules).
		leaveAuth := []*pdu.Event{join}
		for _, ev := range base {
			if ev.Type() != "m.room.join_rules" {
				leaveAuth = append(leaveAuth, ev)
			}
		}
		leave := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "leave"},
			[]*pdu.Event{join}, leaveAuth)
		for _, step := range []struct {
			ev   *pdu.Event
			want []string
		}{{join, []string{remoteServer, testServer}}, {leave, []string{testServer}}} {
			if r := e.input(roomID, step.ev)[0]; r.Output == nil {
				t.Fatalf("input %s: %+v", step.ev.EventID(), r)
			}
			recs, err := e.db.EventsByID(ctx, []string{step.ev.EventID()})
			if err != nil || len(recs) != 1 {
				t.Fatalf("%s: %v, %v", step.ev.EventID(), recs, err)
			}
			rec := recs[0]
			e.rs.joinedServers = joinedServersCache{}
			if _, err := e.rs.JoinedServersAt(ctx, rec.StateBeforeNID); err != nil {
				t.Fatal(err)
			}
			got, err := e.rs.JoinedServersAfter(ctx, rec)
			if err != nil || !slices.Equal(got, step.want) {
				t.Fatalf("after %s (derived): %v, %v; want %v", rec.Membership, got, err, step.want)
			}
			if _, ok := e.rs.joinedServers.get(rec.StateAfterNID); !ok {
				t.Fatalf("after %s: the derived servers were not cached", rec.Membership)
			}
			e.rs.joinedServers = joinedServersCache{}
			if full, err := e.rs.JoinedServersAt(ctx, rec.StateAfterNID); err != nil || !slices.Equal(full, got) {
				t.Fatalf("after %s: read whole %v, derived %v (%v)", rec.Membership, full, got, err)
			}
		}
	})
}
