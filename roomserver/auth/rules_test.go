package auth

import (
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func message(r *room, sender string) *pdu.Event {
	return r.event(sender, "m.room.message", nil, `{"msgtype":"m.text","body":"hi"}`)
}

func TestSenderAndLevels(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "message by member", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "message by invitee", want: "sender membership: the sender is not joined", setup: func(r *room) { r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "message by stranger", want: "sender membership",
			ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "events_default", want: "required power level: the sender's power level is below the level required for m.room.message", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"events_default":1`))
		}, ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "events entry", want: "required power level", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"events":{"m.room.message":10}`, `"`+bob+`":9`))
		}, ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "events entry met", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"events":{"m.room.message":10}`, `"`+bob+`":10`))
		}, ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "users_default", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"events_default":5,"users_default":5`))
		}, ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "state needs 50 without power levels", want: "required power level", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.event(bob, "m.room.topic", sp(""), `{"topic":"x"}`) }},
		{name: "creator has 100 without power levels", ev: func(r *room) *pdu.Event {
			return r.event(alice, "m.room.topic", sp(""), `{"topic":"x"}`)
		}},
		{name: "state_default", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"state_default":0`))
		}, ev: func(r *room) *pdu.Event { return r.event(bob, "m.room.topic", sp(""), `{"topic":"x"}`) }},
		{name: "state_key of another user", want: "state_key: a state_key starting with @ must be the sender's user ID", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"state_default":0`))
		}, ev: func(r *room) *pdu.Event { return r.event(bob, "org.example.x", sp(alice), `{}`) }},
		{name: "state_key of the sender", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"state_default":0`))
		}, ev: func(r *room) *pdu.Event { return r.event(bob, "org.example.x", sp(bob), `{}`) }},
		{name: "third_party_invite event", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.event(bob, typeThirdPartyInvite, sp("tok"), `{}`) }},
		{name: "third_party_invite event below invite level", want: "m.room.third_party_invite: the sender's power level is below the invite level", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"invite":50,"events":{"m.room.third_party_invite":0}`))
		}, ev: func(r *room) *pdu.Event { return r.event(bob, typeThirdPartyInvite, sp("tok"), `{}`) }},
		{name: "invalid power levels in state", want: "m.room.power_levels: the room's power levels are invalid", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(`{"users":{"` + bob + `":true}}`)
		}, ev: func(r *room) *pdu.Event { return message(r, bob) }},
		{name: "invalid power levels do not stop a public join", setup: func(r *room) {
			r.joinRule(joinRulePublic)
			r.powerLevels(`{"users":[]}`)
		}, ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
	})
}

func redaction(r *room, sender, redacts string) *pdu.Event {
	p := pdu.ProtoEvent{Type: typeRedaction, Sender: sender, RoomID: r.id, Content: []byte(`{}`),
		PrevEvents: r.prev, Depth: r.depth + 1, Redacts: redacts}
	for _, k := range SelectAuthEvents(r.ver, typeRedaction, nil, sender, nil) {
		if e := r.state[k]; e != nil {
			p.AuthEvents = append(p.AuthEvents, e.EventID())
		}
	}
	r.n++
	if r.ver.EventIDs == pdu.EventIDOpaque {
		p.EventID = "$r" + string(rune('a'+r.n%26)) + ":" + domain(sender)
	}
	ev, err := p.Build(r.ver, domain(sender), testKeyID, keyFor(domain(sender)))
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

func TestRedactionRule(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "with redact level", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return redaction(r, alice, "$x:b.test") }},
		{name: "own server's event", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return redaction(r, bob, "$x:b.test") }},
		{name: "other server's event", to: 2, want: "m.room.redaction: the sender's power level is below the redact level", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return redaction(r, bob, "$x:a.test") }},
		{name: "other server's event, v3+", from: 3, setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return redaction(r, bob, "$xyz") }},
		{name: "redaction level in events", from: 3, want: "required power level", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.powerLevels(r.adminPL(`"events":{"m.room.redaction":1}`))
		}, ev: func(r *room) *pdu.Event { return redaction(r, bob, "$xyz") }},
	})
}

func TestRedactionAllowed(t *testing.T) {
	for n := 1; n <= 12; n++ {
		r := newRoom(t, n, "", false)
		r.set(bob, membershipJoin)
		r.set(erin, membershipJoin)
		levels, err := PowerLevelsFromState(r.create, nil)
		if err != nil {
			t.Fatal(err)
		}
		orig := message(r, alice)
		byErin := message(r, erin)
		old := n <= 2
		if got := RedactionAllowed(redaction(r, bob, orig.EventID()), orig, levels); got != old {
			t.Errorf("v%d: bob redacting alice's event: %v", n, got)
		}
		if !RedactionAllowed(redaction(r, bob, byErin.EventID()), byErin, levels) {
			t.Errorf("v%d: bob redacting erin's (same server) event refused", n)
		}
		if !RedactionAllowed(redaction(r, alice, byErin.EventID()), byErin, levels) {
			t.Errorf("v%d: alice (100) redacting refused", n)
		}
	}
}
