package roomserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// A second server, faked: it only has a signing key and builds events by
// hand, as a remote homeserver would send them over federation.
const remoteServer = "remote.test"

type fakeRemote struct {
	keyID string
	key   ed25519.PrivateKey
}

func newFakeRemote(t testing.TB) *fakeRemote {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeRemote{keyID: "ed25519:r1", key: key}
}

// VerifyKey implements ServerKeys for the fake server only.
func (f *fakeRemote) VerifyKey(_ context.Context, server, keyID string, _ int64) (ed25519.PublicKey, error) {
	if server != remoteServer || keyID != f.keyID {
		return nil, fmt.Errorf("no key %s for %s", keyID, server)
	}
	return f.key.Public().(ed25519.PublicKey), nil
}

// build makes a remote event citing prev and auth by ID.
func (f *fakeRemote) build(t testing.TB, ver *pdu.RoomVersion, roomID, sender, evType string, stateKey *string, c any, prev, authIDs []*pdu.Event) *pdu.Event {
	t.Helper()
	var depth int64
	pe := pdu.ProtoEvent{Type: evType, StateKey: stateKey, Sender: sender, RoomID: roomID,
		Content: content(t, c), OriginServerTS: time.Now().UnixMilli()}
	for _, p := range prev {
		pe.PrevEvents = append(pe.PrevEvents, p.EventID())
		depth = max(depth, p.Depth())
	}
	for _, a := range authIDs {
		if a == nil {
			continue
		}
		pe.AuthEvents = append(pe.AuthEvents, a.EventID())
	}
	pe.Depth = depth + 1
	if ver.EventIDs == pdu.EventIDOpaque {
		pe.EventID = "$" + randomString(12) + ":" + remoteServer
	}
	ev, err := pe.Build(ver, remoteServer, f.keyID, f.key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func newEnvWithRemote(t testing.TB, dsn string, remote *fakeRemote) *env {
	e := newEnv(t, dsn)
	e.close()
	e.remoteKeys = remote
	e.open()
	return e
}

func (e *env) input(roomID string, evs ...*pdu.Event) []InputResult {
	e.t.Helper()
	res, err := e.rs.InputReceived(ctxT(e.t), roomID, evs)
	if err != nil {
		e.t.Fatalf("InputReceived: %v", err)
	}
	return res
}

func (e *env) stateEvent(roomID, evType, stateKey string) *pdu.Event {
	e.t.Helper()
	ev, err := e.rs.CurrentStateEvent(ctxT(e.t), roomID, pdu.StateKey{Type: evType, StateKey: stateKey})
	if err != nil || ev == nil {
		e.t.Fatalf("current %s %q: %v, %v", evType, stateKey, ev, err)
	}
	return ev
}

func (e *env) lastEvent(roomID string) *pdu.Event {
	e.t.Helper()
	room, err := e.db.Room(ctxT(e.t), roomID)
	if err != nil {
		e.t.Fatal(err)
	}
	ext, err := e.db.ForwardExtremities(ctxT(e.t), room.NID)
	if err != nil || len(ext) != 1 {
		e.t.Fatalf("forward extremities %v, %v", ext, err)
	}
	got, err := e.rs.Event(ctxT(e.t), ext[0].EventID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got.Event
}

func TestReceivedEvents(t *testing.T) {
	remote := newFakeRemote(t)
	for _, ver := range []string{"1", "11", "12"} {
		t.Run("v"+ver, func(t *testing.T) {
			forEachDSN(t, func(t *testing.T, dsn string) {
				e := newEnvWithRemote(t, dsn, remote)
				testReceivedEvents(t, e, remote, ver)
			})
		})
	}
}

func testReceivedEvents(t *testing.T, e *env, remote *fakeRemote, verID string) {
	ctx := ctxT(t)
	ver, _ := pdu.GetRoomVersion(verID)
	alice, bob := user("alice"), "@bob:"+remoteServer
	roomID, _ := e.createRoom(verID, alice)
	create := e.stateEvent(roomID, "m.room.create", "")
	// authFor lists the current auth events for keys (v12 never cites the
	// create event).
	authFor := func(keys ...pdu.StateKey) []*pdu.Event {
		var out []*pdu.Event
		for _, k := range keys {
			if k.Type == "m.room.create" && ver.CreateEventIsRoomID {
				continue
			}
			if ev, _ := e.rs.CurrentStateEvent(ctx, roomID, k); ev != nil {
				out = append(out, ev)
			}
		}
		return out
	}
	createK, plK, jrK := pdu.StateKey{Type: "m.room.create"}, pdu.StateKey{Type: "m.room.power_levels"}, pdu.StateKey{Type: "m.room.join_rules"}
	bobK := pdu.StateKey{Type: "m.room.member", StateKey: bob}
	_ = create

	// A remote join, accepted like a local one.
	join := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
		[]*pdu.Event{e.lastEvent(roomID)}, authFor(createK, plK, jrK))
	res := e.input(roomID, join)
	if res[0].Output == nil || res[0].Rejected != nil || res[0].Dropped != nil {
		t.Fatalf("remote join: %+v", res[0])
	}
	if m, _ := e.rs.Membership(ctx, roomID, bob); m != "join" {
		t.Fatalf("bob's membership %q", m)
	}
	if again := e.input(roomID, join); !again[0].Duplicate {
		t.Errorf("second input of the join: %+v", again[0])
	}

	// A fork: alice and bob both extend bob's join. Bob's event arrives
	// second; both become forward extremities, and the next local event
	// merges them.
	aliceMsg := e.send(roomID, msgReq(t, alice, "from alice"))[0]
	bobMsg := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "from bob"},
		[]*pdu.Event{join}, authFor(createK, plK, bobK))
	if r := e.input(roomID, bobMsg)[0]; r.Output == nil {
		t.Fatalf("bob's forked message: %+v", r)
	}
	merge := e.send(roomID, msgReq(t, alice, "merge"))[0]
	if prev := merge.Event.PrevEventIDs(); len(prev) != 2 || merge.Event.Depth() != max(aliceMsg.Event.Depth(), bobMsg.Depth())+1 {
		t.Errorf("merge event cites %v at depth %d", prev, merge.Event.Depth())
	}

	// A state fork resolved by state resolution: bob (given level 50) and
	// alice set the room name concurrently; bob's merge event has both as
	// prev_events and its state before is their resolution.
	pl := e.send(roomID, stateReq(t, alice, "m.room.power_levels", "", plContent(ver, alice, map[string]int{bob: 50})))[0]
	base := pl.Event
	aliceName := e.send(roomID, stateReq(t, alice, "m.room.name", "", map[string]string{"name": "alice's"}))[0]
	bobName := remote.build(t, ver, roomID, bob, "m.room.name", strp(""), map[string]string{"name": "bob's"},
		[]*pdu.Event{base}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	if r := e.input(roomID, bobName)[0]; r.Output == nil {
		t.Fatalf("bob's concurrent name: %+v", r)
	}
	bobMerge := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "merged"},
		[]*pdu.Event{aliceName.Event, bobName}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	if r := e.input(roomID, bobMerge)[0]; r.Output == nil {
		t.Fatalf("bob's merge: %+v", r)
	}
	before, err := e.rs.StateBefore(ctx, bobMerge.EventID())
	if err != nil {
		t.Fatal(err)
	}
	var nameBefore string
	for _, s := range before {
		if s.Type() == "m.room.name" {
			nameBefore = s.EventID()
		}
	}
	current := e.stateEvent(roomID, "m.room.name", "").EventID()
	if nameBefore == "" || nameBefore != current {
		t.Errorf("name before the merge %q, current %q: the resolution should be both", nameBefore, current)
	}
	if current != aliceName.Event.EventID() && current != bobName.EventID() {
		t.Errorf("resolved name %s is neither candidate", current)
	}

	// Rejected: bob raises himself to 100, which level 50 may not.
	grab := remote.build(t, ver, roomID, bob, "m.room.power_levels", strp(""), plContent(ver, alice, map[string]int{bob: 100}),
		[]*pdu.Event{bobMerge}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	r := e.input(roomID, grab)[0]
	if !isForbidden(r.Rejected) || r.Output != nil {
		t.Fatalf("power grab: %+v", r)
	}
	if got, err := e.rs.Event(ctx, grab.EventID()); err != nil || !got.Rejected || got.StreamPos != 0 {
		t.Errorf("rejected event stored as %+v, %v", got, err)
	}
	if e.stateEvent(roomID, "m.room.power_levels", "").EventID() != pl.Event.EventID() {
		t.Error("a rejected event changed the current state")
	}

	// Soft failure: alice bans bob; bob then sends an event on top of an
	// older event, where he was still joined.
	e.send(roomID, stateReq(t, alice, "m.room.member", bob, map[string]string{"membership": "ban"}))
	late := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "sneaky"},
		[]*pdu.Event{bobMerge}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	r = e.input(roomID, late)[0]
	if !r.SoftFailed || r.Output != nil || r.Rejected != nil {
		t.Fatalf("soft-failed event: %+v", r)
	}
	if got, err := e.rs.Event(ctx, late.EventID()); err != nil || !got.SoftFailed || got.StreamPos != 0 {
		t.Errorf("soft-failed event stored as %+v, %v", got, err)
	}
	next := e.send(roomID, msgReq(t, alice, "after the soft failure"))[0]
	if contains(next.Event.PrevEventIDs(), late.EventID()) {
		t.Error("a soft-failed event became a prev_event")
	}

	// Dropped: a bad signature, and unknown prev events.
	other := newFakeRemote(t)
	forged := other.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"body": "x"},
		[]*pdu.Event{next.Event}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	orphanPrev := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"body": "x"},
		[]*pdu.Event{next.Event}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	orphan := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"body": "y"},
		[]*pdu.Event{orphanPrev}, []*pdu.Event{orNil(ver, create), pl.Event, join})
	rs := e.input(roomID, forged, orphan)
	if rs[0].Dropped == nil || rs[0].Output != nil {
		t.Errorf("forged signature: %+v", rs[0])
	}
	var missing *MissingEventsError
	if !errors.As(rs[1].Dropped, &missing) || len(missing.IDs) != 1 || missing.IDs[0] != orphanPrev.EventID() {
		t.Errorf("unknown prev event: %+v", rs[1])
	}
	for _, id := range []string{forged.EventID(), orphan.EventID()} {
		if _, err := e.rs.Event(ctx, id); !errors.Is(err, ErrEventNotFound) {
			t.Errorf("dropped event %s was stored (%v)", id, err)
		}
	}
}

// Content that does not match the content hash: the event is kept,
// redacted (server-server-api "Checks performed on receipt of a PDU").
func TestReceivedContentHashMismatchIsRedacted(t *testing.T) {
	remote := newFakeRemote(t)
	forEachDSN(t, func(t *testing.T, dsn string) {
		e := newEnvWithRemote(t, dsn, remote)
		ver, _ := pdu.GetRoomVersion("11")
		alice, bob := user("alice"), "@bob:"+remoteServer
		roomID, _ := e.createRoom("11", alice)
		create, plEv, join := e.remoteJoin(t, remote, ver, roomID, bob)
		e.input(roomID, join)
		msg := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "original"},
			[]*pdu.Event{join}, []*pdu.Event{create, plEv, join})
		tampered, err := pdu.ParseEvent(bytes.Replace(msg.JSON(), []byte("original"), []byte("tampered"), 1), ver)
		if err != nil {
			t.Fatal(err)
		}
		r := e.input(roomID, tampered)[0]
		if r.Output == nil {
			t.Fatalf("tampered event: %+v", r)
		}
		got, err := e.rs.Event(ctxT(t), msg.EventID())
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Event.Content()) != "{}" {
			t.Errorf("stored content %s, want the redacted {}", got.Event.Content())
		}
	})
}

// A transaction's worth of events in one call, each citing the one
// before (the usual /send), with a forged one among them: each gets its
// own result in its place, the chain enters the timeline in order, and
// the forged event does not.
func TestReceivedChainInOneCall(t *testing.T) {
	remote, other := newFakeRemote(t), newFakeRemote(t)
	forEachDSN(t, func(t *testing.T, dsn string) {
		e := newEnvWithRemote(t, dsn, remote)
		ver, _ := pdu.GetRoomVersion("11")
		alice, bob := user("alice"), "@bob:"+remoteServer
		roomID, _ := e.createRoom("11", alice)
		create, plEv, join := e.remoteJoin(t, remote, ver, roomID, bob)
		const n, forgedAt = 50, 20
		evs := []*pdu.Event{join}
		for i := 1; i < n; i++ {
			by := remote
			if i == forgedAt {
				by = other
			}
			// The forged event cites the one before it and is cited by
			// none: the chain goes on from its predecessor.
			prev := evs[len(evs)-1]
			if i == forgedAt+1 {
				prev = evs[forgedAt-1]
			}
			evs = append(evs, by.build(t, ver, roomID, bob, "m.room.message", nil,
				map[string]string{"msgtype": "m.text", "body": fmt.Sprint(i)}, []*pdu.Event{prev}, []*pdu.Event{create, plEv, join}))
		}
		res := e.input(roomID, evs...)
		var lastPos int64
		for i, r := range res {
			if r.EventID != evs[i].EventID() {
				t.Fatalf("result %d is of %s, not %s", i, r.EventID, evs[i].EventID())
			}
			if i == forgedAt {
				if r.Dropped == nil || r.Output != nil {
					t.Errorf("forged event %d: %+v", i, r)
				}
				continue
			}
			if r.Output == nil || r.Output.StreamPos <= lastPos {
				t.Fatalf("event %d: %+v after stream position %d", i, r, lastPos)
			}
			lastPos = r.Output.StreamPos
		}
		if got := e.lastEvent(roomID).EventID(); got != evs[n-1].EventID() {
			t.Errorf("forward extremity %s, want the chain's last event %s", got, evs[n-1].EventID())
		}
	})
}

// In one call, events citing a state event and a redaction stored earlier
// in the same call: what the call stored is seen as the database holds it
// (the state after the state event, the redacted content).
func TestReceivedCitingEventsOfTheSameCall(t *testing.T) {
	remote := newFakeRemote(t)
	forEachDSN(t, func(t *testing.T, dsn string) {
		e := newEnvWithRemote(t, dsn, remote)
		ver, _ := pdu.GetRoomVersion("11")
		alice, bob := user("alice"), "@bob:"+remoteServer
		roomID, _ := e.createRoom("11", alice)
		create, plEv, join := e.remoteJoin(t, remote, ver, roomID, bob)
		rename := remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join", "displayname": "Bob"},
			[]*pdu.Event{join}, []*pdu.Event{create, plEv, join})
		msg := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "oops"},
			[]*pdu.Event{rename}, []*pdu.Event{create, plEv, rename})
		redaction := remote.build(t, ver, roomID, bob, "m.room.redaction", nil, map[string]string{"redacts": msg.EventID()},
			[]*pdu.Event{msg}, []*pdu.Event{create, plEv, rename})
		after := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "after"},
			[]*pdu.Event{redaction}, []*pdu.Event{create, plEv, rename})
		for i, r := range e.input(roomID, join, rename, msg, redaction, after) {
			if r.Output == nil {
				t.Fatalf("event %d: %+v", i, r)
			}
		}
		before, err := e.rs.StateBefore(ctxT(t), after.EventID())
		if err != nil {
			t.Fatal(err)
		}
		var member string
		for _, ev := range before {
			if ev.Type() == "m.room.member" && ev.StateKey() != nil && *ev.StateKey() == bob {
				member = ev.EventID()
			}
		}
		if member != rename.EventID() {
			t.Errorf("bob's member event before the last message is %s, want the rename %s", member, rename.EventID())
		}
		got, err := e.rs.Event(ctxT(t), msg.EventID())
		if err != nil {
			t.Fatal(err)
		}
		if got.RedactedBy != redaction.EventID() || string(got.Event.Content()) != "{}" {
			t.Errorf("redacted message stored as %s, redacted by %q", got.Event.Content(), got.RedactedBy)
		}

		// Redactions that arrive before their target: in an earlier call,
		// and earlier in the same call.
		auth := []*pdu.Event{create, plEv, rename}
		early := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "secret 1"}, []*pdu.Event{after}, auth)
		redEarly := remote.build(t, ver, roomID, bob, "m.room.redaction", nil, map[string]string{"redacts": early.EventID()}, []*pdu.Event{after}, auth)
		same := remote.build(t, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "secret 2"}, []*pdu.Event{redEarly}, auth)
		redSame := remote.build(t, ver, roomID, bob, "m.room.redaction", nil, map[string]string{"redacts": same.EventID()}, []*pdu.Event{redEarly}, auth)
		for i, call := range [][]*pdu.Event{{redEarly}, {early}, {redSame, same}} {
			for _, r := range e.input(roomID, call...) {
				if r.Output == nil {
					t.Fatalf("call %d, %s: %+v", i, r.EventID, r)
				}
			}
		}
		for target, by := range map[*pdu.Event]*pdu.Event{early: redEarly, same: redSame} {
			got, err := e.rs.Event(ctxT(t), target.EventID())
			if err != nil {
				t.Fatal(err)
			}
			if got.RedactedBy != by.EventID() || string(got.Event.Content()) != "{}" {
				t.Errorf("%s stored as %s, redacted by %q, want by %s", target.EventID(), got.Event.Content(), got.RedactedBy, by.EventID())
			}
		}
	})
}

// forEachRecentVersion runs fn for room versions 11 and 12, each on a
// fresh database of each kind, with a roomserver that knows remote's key.
func forEachRecentVersion(t *testing.T, fn func(t *testing.T, e *env, remote *fakeRemote, ver *pdu.RoomVersion)) {
	remote := newFakeRemote(t)
	for _, verID := range []string{"11", "12"} {
		t.Run("v"+verID, func(t *testing.T) {
			ver, err := pdu.GetRoomVersion(verID)
			if err != nil {
				t.Fatal(err)
			}
			forEachDSN(t, func(t *testing.T, dsn string) { fn(t, newEnvWithRemote(t, dsn, remote), remote, ver) })
		})
	}
}

// remoteJoin builds (without input) the remote user bob's join of a room
// created here, and returns it with the room's create and power levels
// events, which bob's later events cite too.
func (e *env) remoteJoin(t testing.TB, remote *fakeRemote, ver *pdu.RoomVersion, roomID, bob string) (create, pl, join *pdu.Event) {
	t.Helper()
	create = e.stateEvent(roomID, "m.room.create", "")
	pl = e.stateEvent(roomID, "m.room.power_levels", "")
	jr := e.stateEvent(roomID, "m.room.join_rules", "")
	join = remote.build(t, ver, roomID, bob, "m.room.member", strp(bob), map[string]string{"membership": "join"},
		[]*pdu.Event{e.lastEvent(roomID)}, []*pdu.Event{orNil(ver, create), pl, jr})
	return create, pl, join
}

// forEachDSN runs fn with a fresh database of each kind.
func forEachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, dsn := range dsnsForTest(t) {
		t.Run(dsn.name, func(t *testing.T) { fn(t, dsn.dsn(t)) })
	}
}

func orNil(ver *pdu.RoomVersion, create *pdu.Event) *pdu.Event {
	if ver.CreateEventIsRoomID {
		return nil
	}
	return create
}

// plContent is power levels content with alice at 100 (below v12, where
// creators are not listed) and the given users.
func plContent(ver *pdu.RoomVersion, admin string, users map[string]int) map[string]any {
	u := map[string]int{}
	if !ver.PrivilegedCreators {
		u[admin] = 100
	}
	for k, v := range users {
		u[k] = v
	}
	return map[string]any{"users": u}
}
