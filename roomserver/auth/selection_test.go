package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestSelectAuthEvents(t *testing.T) {
	create := pdu.StateKey{Type: typeCreate}
	pl := pdu.StateKey{Type: typePowerLevels}
	jr := pdu.StateKey{Type: typeJoinRules}
	m := func(u string) pdu.StateKey { return pdu.StateKey{Type: typeMember, StateKey: u} }
	for _, c := range []struct {
		name     string
		from, to int
		evType   string
		stateKey *string
		sender   string
		content  string
		want     []pdu.StateKey
	}{
		{name: "create", evType: typeCreate, stateKey: sp(""), sender: alice, content: `{}`},
		{name: "message", to: 11, evType: "m.room.message", sender: bob, content: `{}`,
			want: []pdu.StateKey{create, pl, m(bob)}},
		{name: "message v12", from: 12, evType: "m.room.message", sender: bob, content: `{}`,
			want: []pdu.StateKey{pl, m(bob)}},
		{name: "join", to: 7, evType: typeMember, stateKey: sp(bob), sender: bob,
			content: `{"membership":"join","join_authorised_via_users_server":"` + carol + `"}`,
			want:    []pdu.StateKey{create, pl, m(bob), jr}},
		{name: "restricted join", from: 8, to: 11, evType: typeMember, stateKey: sp(bob), sender: bob,
			content: `{"membership":"join","join_authorised_via_users_server":"` + carol + `"}`,
			want:    []pdu.StateKey{create, pl, m(bob), jr, m(carol)}},
		{name: "restricted join v12", from: 12, evType: typeMember, stateKey: sp(bob), sender: bob,
			content: `{"membership":"join","join_authorised_via_users_server":"` + carol + `"}`,
			want:    []pdu.StateKey{pl, m(bob), jr, m(carol)}},
		{name: "authoriser on a leave", from: 8, to: 11, evType: typeMember, stateKey: sp(bob), sender: bob,
			content: `{"membership":"leave","join_authorised_via_users_server":"` + carol + `"}`,
			want:    []pdu.StateKey{create, pl, m(bob)}},
		{name: "invite", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice, content: invite,
			want: []pdu.StateKey{create, pl, m(alice), m(bob), jr}},
		{name: "third party invite", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice,
			content: `{"membership":"invite","third_party_invite":{"signed":{"token":"tok"}}}`,
			want:    []pdu.StateKey{create, pl, m(alice), m(bob), jr, {Type: typeThirdPartyInvite, StateKey: "tok"}}},
		{name: "third party token not a string", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice,
			content: `{"membership":"invite","third_party_invite":{"signed":{"token":7}}}`,
			want:    []pdu.StateKey{create, pl, m(alice), m(bob), jr}},
		{name: "knock", to: 11, evType: typeMember, stateKey: sp(bob), sender: bob, content: knock,
			want: []pdu.StateKey{create, pl, m(bob), jr}},
		{name: "kick", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice, content: leave,
			want: []pdu.StateKey{create, pl, m(alice), m(bob)}},
		{name: "ban", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice, content: ban,
			want: []pdu.StateKey{create, pl, m(alice), m(bob)}},
		{name: "membership not a string", to: 11, evType: typeMember, stateKey: sp(bob), sender: alice, content: `{"membership":1}`,
			want: []pdu.StateKey{create, pl, m(alice), m(bob)}},
		{name: "member without state_key", to: 11, evType: typeMember, sender: alice, content: join,
			want: []pdu.StateKey{create, pl, m(alice)}},
	} {
		from, to := c.from, c.to
		if from == 0 {
			from = 1
		}
		if to == 0 {
			to = 12
		}
		for n := from; n <= to; n++ {
			got := SelectAuthEvents(version(t, n), c.evType, c.stateKey, c.sender, []byte(c.content))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s v%d: got %v, want %v", c.name, n, got, c.want)
			}
		}
	}
}

func TestCheckAuthEvents(t *testing.T) {
	for n := 1; n <= 12; n++ {
		r := newRoom(t, n, "", false)
		r.joinRule(joinRulePublic)
		r.powerLevels(r.adminPL(""))
		r.set(bob, membershipJoin)
		msg := message(r, bob)
		auth := r.authEvents(msg)
		if err := CheckAuthEvents(msg, auth); err != nil {
			t.Fatalf("v%d: %v", n, err)
		}

		// Missing auth events are reported, not refused.
		var missing *MissingAuthEventsError
		err := CheckAuthEvents(msg, auth[1:])
		if !errors.As(err, &missing) || len(missing.IDs) != 1 || !strings.Contains(err.Error(), "missing auth events") {
			t.Errorf("v%d: missing: %v", n, err)
		}
		if n >= 12 {
			err := CheckAuthEvents(msg, auth[:len(auth)-1]) // without the create event
			if !errors.As(err, &missing) || missing.IDs[0] != "$"+r.id[1:] {
				t.Errorf("v%d: missing create: %v", n, err)
			}
		}

		expectRefusal := func(what string, ev *pdu.Event, auth []*pdu.Event, want string) {
			t.Helper()
			err := CheckAuthEvents(ev, auth)
			var na *NotAllowedError
			if !errors.As(err, &na) || !strings.Contains(err.Error(), want) {
				t.Errorf("v%d %s: got %v, want %q", n, what, err, want)
			}
		}

		// Two entries for one state key.
		oldPL := r.state[plKey]
		r.powerLevels(r.adminPL(`"ban":40`))
		dup := r.event(bob, "m.room.message", nil, `{}`)
		dupProto := withAuth(t, r, dup, append(append([]string{}, dup.AuthEventIDs()...), oldPL.EventID()))
		expectRefusal("duplicate", dupProto, append(r.authEvents(dup), oldPL), "auth_events: more than one entry for (m.room.power_levels, \"\")")

		// An entry the selection does not pick.
		jr := r.state[pdu.StateKey{Type: typeJoinRules}]
		extra := withAuth(t, r, dup, append(append([]string{}, dup.AuthEventIDs()...), jr.EventID()))
		expectRefusal("unselected", extra, append(r.authEvents(dup), jr), "is not one the auth events selection picks")

		// A message event cited as an auth event.
		extra = withAuth(t, r, dup, append(append([]string{}, dup.AuthEventIDs()...), msg.EventID()))
		expectRefusal("message", extra, append(r.authEvents(dup), msg), "is not one the auth events selection picks")

		// An entry from another room.
		other := newRoom(t, n, `"topic":"other"`, false)
		other.powerLevels(other.adminPL(""))
		otherPL := other.state[plKey]
		var ids []string
		for _, id := range dup.AuthEventIDs() {
			if id != r.state[plKey].EventID() {
				ids = append(ids, id)
			}
		}
		foreign := withAuth(t, r, dup, append(ids, otherPL.EventID()))
		expectRefusal("foreign", foreign, append(r.authEvents(dup), otherPL), "is from another room")

		// The create event: required before v12, forbidden from v12.
		createID := r.create.EventID()
		if n < 12 {
			var noCreate []string
			for _, id := range dup.AuthEventIDs() {
				if id != createID {
					noCreate = append(noCreate, id)
				}
			}
			expectRefusal("no create", withAuth(t, r, dup, noCreate), r.authEvents(dup), "no m.room.create event among the entries")
		} else {
			cited := withAuth(t, r, dup, append(append([]string{}, dup.AuthEventIDs()...), createID))
			expectRefusal("create cited", cited, r.authEvents(dup), "is not one the auth events selection picks")
		}

		// The auth events decide, not the current state: bob's message is
		// refused by the auth events of an event that predates his join.
		r2 := newRoom(t, n, "", false)
		early := message(r2, bob)
		expectRefusal("not joined", early, r2.authEvents(early), "sender membership")

		// The create event needs no auth events.
		if err := CheckAuthEvents(r.create, nil); err != nil {
			t.Errorf("v%d create: %v", n, err)
		}
	}
	if err := CheckAuthEvents(nil, nil); err == nil {
		t.Fatal("nil event allowed")
	}
}

// withAuth rebuilds ev with other auth_events.
func withAuth(t testing.TB, r *room, ev *pdu.Event, authIDs []string) *pdu.Event {
	t.Helper()
	p := pdu.ProtoEvent{Type: ev.Type(), StateKey: ev.StateKey(), Sender: ev.Sender(), RoomID: ev.RoomID(),
		Content: ev.Content(), PrevEvents: ev.PrevEventIDs(), AuthEvents: authIDs, Depth: ev.Depth(),
		OriginServerTS: ev.OriginServerTS() + 1}
	if r.ver.EventIDs == pdu.EventIDOpaque {
		r.n++
		p.EventID = "$w" + strings.Repeat("x", r.n) + ":" + domain(ev.Sender())
	}
	out, err := p.Build(r.ver, domain(ev.Sender()), testKeyID, keyFor(domain(ev.Sender())))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
