package auth

import (
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Every scalar power level field is subject to the change rules.
func TestPowerLevelsEachField(t *testing.T) {
	for n := 1; n <= 12; n += 11 {
		for i := 0; i < numFields; i++ {
			name := fieldName(i)
			if fieldIndex(name) != i {
				t.Fatalf("field %d named %q maps back to %d", i, name, fieldIndex(name))
			}
			r := newRoom(t, n, "", false)
			// carol may send power levels whatever state_default is.
			const plLevel = `"events":{"m.room.power_levels":50}`
			levelsRoom(`"` + name + `":60,` + plLevel)(r)
			users := []string{`"` + carol + `":50`, `"` + bob + `":40`, `"` + dave + `":50`}
			err := r.check(plBy(r, carol, r.adminPL(`"`+name+`":0,`+plLevel, users...)))
			if err == nil || !strings.Contains(err.Error(), "the current "+name+" is above") {
				t.Errorf("v%d %s: %v", n, name, err)
			}
			r = newRoom(t, n, "", false)
			levelsRoom("")(r)
			err = r.check(plBy(r, carol, r.adminPL(`"`+name+`":51`, users...)))
			if err == nil || !strings.Contains(err.Error(), "the new "+name+" is above") {
				t.Errorf("v%d %s: %v", n, name, err)
			}
		}
	}
	if fieldIndex("nonsense") != -1 {
		t.Fatal("unknown field has an index")
	}
}

// Invalid power levels in the state refuse every rule that needs them.
func TestInvalidPowerLevelsInState(t *testing.T) {
	bad := `{"users":{"@bob:b.test":{"level":100}}}`
	runRuleCases(t, []ruleCase{
		{name: "invite", want: "the room's power levels are invalid", setup: func(r *room) { r.powerLevels(bad) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, invite) }},
		{name: "kick", want: "the room's power levels are invalid", setup: func(r *room) { r.set(bob, membershipJoin); r.powerLevels(bad) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, leave) }},
		{name: "ban", want: "the room's power levels are invalid", setup: func(r *room) { r.powerLevels(bad) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, ban) }},
		{name: "restricted join", from: 8, want: "the room's power levels are invalid", setup: func(r *room) {
			r.joinRule(joinRuleRestricted)
			r.set(carol, membershipJoin)
			r.powerLevels(bad)
		}, ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
		{name: "self leave needs no levels", setup: func(r *room) { r.set(bob, membershipJoin); r.powerLevels(bad) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
	})
}

func TestRoomIDWithoutDomain(t *testing.T) {
	r := newRoom(t, 1, "", true)
	r.prev = nil
	r.id = "!nodomain"
	err := r.check(r.event(alice, typeCreate, sp(""), createContent(r, "")))
	if err == nil || !strings.Contains(err.Error(), "room_id domain") {
		t.Fatalf("got %v", err)
	}
}

// In version 12 a room ID derived from an event that is not a create event
// names no room.
func TestV12RoomIDFromNonCreate(t *testing.T) {
	r := newRoom(t, 12, "", false)
	msg := message(r, alice)
	fake := &room{t: t, ver: r.ver, id: "!" + msg.EventID()[1:], state: map[pdu.StateKey]*pdu.Event{}, create: msg}
	ev := fake.event(alice, "m.room.message", nil, `{}`)
	err := CheckAuthEvents(ev, []*pdu.Event{msg})
	if err == nil || !strings.Contains(err.Error(), "not derived from an m.room.create event") {
		t.Fatalf("got %v", err)
	}
	if err := Check(ev, func(k pdu.StateKey) *pdu.Event { return r.state[k] }); err == nil {
		t.Fatal("allowed against another room's create event")
	}
}

// A Checker reused across events and states gives the answers of Check.
func TestCheckerReuse(t *testing.T) {
	var c Checker
	for n := 1; n <= 12; n++ {
		r := newRoom(t, n, "", false)
		r.set(bob, membershipJoin)
		var states []map[pdu.StateKey]*pdu.Event
		for i := 0; i < plCacheSize+2; i++ {
			r.powerLevels(r.adminPL(`"events_default":` + string(rune('0'+i%3))))
			snapshot := map[pdu.StateKey]*pdu.Event{}
			for k, v := range r.state {
				snapshot[k] = v
			}
			states = append(states, snapshot)
		}
		msg := message(r, bob)
		for round := 0; round < 3; round++ {
			for i, s := range states {
				lookup := func(k pdu.StateKey) *pdu.Event { return s[k] }
				want := Check(msg, lookup)
				got := c.Check(msg, lookup)
				if (want == nil) != (got == nil) {
					t.Fatalf("v%d state %d: Check %v, Checker %v", n, i, want, got)
				}
				if (i%3 == 0) != (got == nil) {
					t.Fatalf("v%d state %d (events_default %d): %v", n, i, i%3, got)
				}
			}
		}
		want := CheckAuthEvents(msg, r.authEvents(msg))
		if got := c.CheckAuthEvents(msg, r.authEvents(msg)); (got == nil) != (want == nil) {
			t.Fatalf("v%d: CheckAuthEvents %v, Checker %v", n, want, got)
		}
	}
}

// Hostile contents: every rule refuses or allows, none panics.
func TestHostileContent(t *testing.T) {
	values := []string{`null`, `true`, `0`, `-1`, `1.5`, `1e308`, `"x"`, `""`, `[]`, `[1,"a",null]`, `{}`,
		`{"a":{"b":{"c":[]}}}`, `"` + strings.Repeat("9", 400) + `"`, `9007199254740991`, `"@bob:b.test"`}
	keys := map[string][]string{
		typeCreate:           {"room_version", "creator", "m.federate", "additional_creators"},
		typeMember:           {"membership", "third_party_invite", "join_authorised_via_users_server"},
		typePowerLevels:      {"users", "events", "notifications", "ban", "users_default", "invite"},
		typeJoinRules:        {"join_rule", "allow"},
		typeThirdPartyInvite: {"public_key", "public_keys"},
	}
	for _, n := range []int{1, 9, 12} {
		for evType, ks := range keys {
			for _, k := range ks {
				for _, v := range values {
					r := newRoom(t, n, "", false)
					r.set(bob, membershipJoin)
					content := `{"` + k + `":` + v + `}`
					if evType == typeMember {
						content = `{"membership":"invite","` + k + `":` + v + `}`
						if k == "membership" {
							content = `{"membership":` + v + `}`
						}
					}
					p := pdu.ProtoEvent{Type: evType, StateKey: sp(""), Sender: alice, RoomID: r.id,
						Content: []byte(content), PrevEvents: r.prev, Depth: 9}
					if evType == typeMember {
						p.StateKey = sp(bob)
					}
					if r.ver.EventIDs == pdu.EventIDOpaque {
						p.EventID = "$h:a.test"
					}
					ev, err := p.Build(r.ver, "a.test", testKeyID, keyFor("a.test"))
					if err != nil {
						continue // not an event of this version at all
					}
					// As the event itself, and as the state others are checked against.
					_ = Check(ev, r.lookup)
					r.apply(ev)
					for _, probe := range []*pdu.Event{
						message(r, bob), r.member(bob, bob, join), r.member(alice, bob, ban),
						r.member(dave, dave, knock), r.member(alice, bob, tpInvite(`{"mxid":"@bob:b.test","token":""}`)),
						plBy(r, alice, `{}`),
					} {
						_ = Check(probe, r.lookup)
						_ = CheckAuthEvents(probe, r.authEvents(probe))
					}
				}
			}
		}
	}
}

// FuzzPowerLevels feeds arbitrary contents to the power levels parser and
// rules; run with go test -fuzz=FuzzPowerLevels -parallel=1.
func FuzzPowerLevels(f *testing.F) {
	for _, s := range []string{`{}`, `{"ban":"50"}`, `{"users":{"@a:b":1.5}}`, `{"events":{"x":[]}}`, `{"notifications":{"room":"+7 "}}`} {
		f.Add(s)
	}
	vers := []*pdu.RoomVersion{version(f, 1), version(f, 9), version(f, 10), version(f, 12)}
	f.Fuzz(func(t *testing.T, content string) {
		for _, v := range vers {
			p, err := ParsePowerLevels(v, []byte(content))
			if err == nil {
				_ = p.UserLevel("@a:b") + p.EventLevel("x", true) + p.NotificationLevel("room")
			}
		}
	})
}
