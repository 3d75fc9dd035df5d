package roomserver

import (
	"testing"
)

func TestHistoryVisibility(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice, bob, carol, dave := user("alice"), user("bob"), user("carol"), user("dave")
		roomID, _ := e.createRoom("11", alice) // history_visibility shared
		setHV := func(v string) Output {
			return e.send(roomID, stateReq(t, alice, "m.room.history_visibility", "", map[string]string{"history_visibility": v}))[0]
		}
		msg := func(body string) Output { return e.send(roomID, msgReq(t, alice, body))[0] }
		sees := func(who string, o Output) bool {
			t.Helper()
			ok, err := e.rs.CanUserSee(ctx, who, o.Event.EventID())
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		expect := func(who string, o Output, want bool, why string) {
			t.Helper()
			if got := sees(who, o); got != want {
				t.Errorf("%s: CanUserSee(%s) = %v, want %v", why, who, got, want)
			}
		}

		// shared: history before a join is visible once the user joins.
		m1 := msg("shared, before bob")
		expect(bob, m1, false, "shared, bob never joined")
		expect(alice, m1, true, "joined sender")
		bobJoin := e.join(roomID, bob)
		expect(bob, m1, true, "shared, bob joined after")
		expect(carol, m1, false, "shared, carol never joined")

		// shared, for a user who joins, leaves and joins again: while
		// away, only what she was joined at (and her own member events).
		eve := user("eve")
		eveJoin := e.join(roomID, eve)
		mEve := msg("shared, eve in")
		eveLeave := e.send(roomID, memberReq(t, eve, eve, "leave"))[0]
		mGone := msg("shared, eve gone")
		expect(eve, m1, false, "shared, sent before eve joined, eve has left")
		expect(eve, mEve, true, "shared, sent while eve was joined")
		expect(eve, mGone, false, "shared, sent after eve left")
		expect(eve, eveJoin, true, "shared, eve's own join")
		expect(eve, eveLeave, true, "shared, eve's own leave")
		e.join(roomID, eve)
		expect(eve, m1, true, "shared, eve joined again: history before her first join")
		expect(eve, mGone, true, "shared, eve joined again: sent while she was away")
		// Invited is not joined.
		frank := user("frank")
		e.send(roomID, memberReq(t, alice, frank, "invite"))
		expect(frank, m1, false, "shared, frank only invited")
		e.send(roomID, memberReq(t, frank, frank, "leave"))

		// joined: only while joined.
		setHV("joined")
		m2 := msg("joined, before carol")
		e.join(roomID, carol)
		m3 := msg("joined, carol in")
		expect(carol, m2, false, "joined, sent before carol joined")
		expect(carol, m3, true, "joined, sent while carol joined")
		carolLeave := e.send(roomID, memberReq(t, carol, carol, "leave"))[0]
		m4 := msg("joined, carol gone")
		expect(carol, m4, false, "joined, sent after carol left")
		expect(carol, m3, true, "joined, still sees what she saw")
		expect(carol, carolLeave, true, "own leave event (membership before it was join)")

		// invited: from the invite on.
		setHV("invited")
		m5 := msg("invited, before dave's invite")
		e.send(roomID, memberReq(t, alice, dave, "invite"))
		m6 := msg("invited, dave invited")
		expect(dave, m5, false, "invited, sent before the invite")
		expect(dave, m6, true, "invited, sent while invited")
		e.join(roomID, dave)
		expect(dave, m6, true, "invited, after joining")
		expect(dave, m5, false, "invited, before the invite even after joining")

		// world_readable: anyone, and the change event itself is visible
		// to non-members because the state after it allows.
		wr := setHV("world_readable")
		m7 := msg("world readable")
		stranger := user("stranger")
		expect(stranger, wr, true, "the change to world_readable")
		expect(stranger, m7, true, "world_readable")
		expect(stranger, m6, false, "invited-era message")
		back := setHV("joined")
		expect(stranger, back, true, "the change from world_readable (state before allows)")
		expect(stranger, msg("joined again"), false, "joined, stranger")

		// Shared again: bob joined long ago and is still joined.
		setHV("shared")
		m8 := msg("shared again")
		expect(bob, m8, true, "shared, joined")
		_ = bobJoin
	})
}

func TestRedaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice, bob, carol := user("alice"), user("bob"), user("carol")
		for _, ver := range []string{"1", "11"} {
			t.Run("v"+ver, func(t *testing.T) {
				roomID, _ := e.createRoom(ver, alice)
				e.join(roomID, bob)
				e.join(roomID, carol)
				bobMsg := e.send(roomID, msgReq(t, bob, "secret"))[0]
				aliceMsg := e.send(roomID, msgReq(t, alice, "admin text"))[0]

				// carol (level 0) may not redact bob's event.
				_, err := e.rs.Send(ctx, roomID, EventRequest{Type: "m.room.redaction", Sender: carol,
					Content: content(t, map[string]string{"reason": "no"}), Redacts: bobMsg.Event.EventID()})
				if !isForbidden(err) {
					t.Fatalf("carol redacting bob's event: %v", err)
				}
				// bob may redact his own; alice (level 100) anyone's.
				red := e.send(roomID, EventRequest{Type: "m.room.redaction", Sender: bob,
					Content: content(t, map[string]string{"reason": "oops"}), Redacts: bobMsg.Event.EventID()})[0]
				got, err := e.rs.Event(ctx, bobMsg.Event.EventID())
				if err != nil {
					t.Fatal(err)
				}
				if !got.Redacted || got.RedactedBy != red.Event.EventID() {
					t.Fatalf("after redaction: Redacted=%v by %q", got.Redacted, got.RedactedBy)
				}
				if string(got.Event.Content()) != "{}" {
					t.Errorf("redacted content %s, want {}", got.Event.Content())
				}
				if got.Event.EventID() != bobMsg.Event.EventID() {
					t.Errorf("redacted event ID %s, want %s", got.Event.EventID(), bobMsg.Event.EventID())
				}
				if id := mustJSON(t, got.Unsigned, "redacted_because"); id == "" || id == "<nil>" {
					t.Errorf("unsigned %s has no redacted_because", got.Unsigned)
				}
				e.send(roomID, EventRequest{Type: "m.room.redaction", Sender: alice, Content: content(t, map[string]string{}),
					Redacts: aliceMsg.Event.EventID()})
				if got, _ := e.rs.Event(ctx, aliceMsg.Event.EventID()); !got.Redacted {
					t.Error("alice's own redaction not applied")
				}
				// A redaction by a user below the redact level of an unknown
				// event is refused as not found.
				_, err = e.rs.Send(ctx, roomID, EventRequest{Type: "m.room.redaction", Sender: carol,
					Content: content(t, map[string]string{}), Redacts: "$unknown:" + testServer})
				if err == nil {
					t.Error("carol redacting an unknown event was accepted")
				}
			})
		}
	})
}
