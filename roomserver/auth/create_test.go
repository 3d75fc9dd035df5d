package auth

import (
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// createContent is a create content for version n with the extra fields.
func createContent(r *room, extra string) string {
	c := `{"room_version":"` + r.ver.ID + `"`
	if r.ver.CreatorInContent {
		c += `,"creator":"` + alice + `"`
	}
	if extra != "" {
		c += "," + extra
	}
	return c + "}"
}

func TestCreateRules(t *testing.T) {
	cases := []ruleCase{
		{name: "valid", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), createContent(r, `"m.federate":false`))
		}},
		{name: "prev_events", want: "m.room.create: event has prev_events", ev: func(r *room) *pdu.Event {
			return r.event(alice, typeCreate, sp(""), createContent(r, ""))
		}},
		{name: "room_id domain", to: 11, want: "room_id domain does not match", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(bob, typeCreate, sp(""), createContent(r, ""))
		}},
		{name: "other server may create", from: 12, ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(bob, typeCreate, sp(""), `{"room_version":"12"}`)
		}},
		{name: "room_id present", from: 12, want: "event has a room_id", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp("x"), `{"room_version":"12"}`)
		}},
		{name: "unknown room_version", want: "not a recognised version", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{"room_version":"99","creator":"`+alice+`"}`)
		}},
		{name: "room_version not a string", want: "room_version is not a string", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{"room_version":1,"creator":"`+alice+`"}`)
		}},
		{name: "no creator", to: 10, want: "content has no creator", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{}`)
		}},
		{name: "no creator needed", from: 11, ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{}`)
		}},
		{name: "additional_creators", from: 12, ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{"additional_creators":["@bob:b.test","@x:[::1]:8448","@y:1.2.3.4:80"]}`)
		}},
		{name: "additional_creators ignored before v12", to: 11, ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), createContent(r, `"additional_creators":"nonsense"`))
		}},
	}
	for _, bad := range []string{`"@bob:b.test"`, `[1]`, `["bob"]`, `["@bob:bad_host!"]`, `["@bob:b.test:99999x"]`, `["@b:[zz]"]`, `["@b:"]`, `[null]`, `{}`} {
		cases = append(cases, ruleCase{name: "bad additional_creators " + bad, from: 12, want: "additional_creators", ev: func(r *room) *pdu.Event {
			r.prev = nil
			return r.event(alice, typeCreate, sp(""), `{"additional_creators":`+bad+`}`)
		}})
	}
	runRuleCases(t, cases)
}

func TestFederate(t *testing.T) {
	for n := 1; n <= 12; n++ {
		for _, c := range []struct {
			federate string
			remoteOK bool
		}{{`true`, true}, {`false`, false}, {`"false"`, false}, {`null`, false}, {``, true}} {
			extra := ""
			if c.federate != "" {
				extra = `"m.federate":` + c.federate
			}
			r := newRoom(t, n, extra, false)
			r.joinRule(joinRulePublic)
			err := r.check(r.member(bob, bob, `{"membership":"join"}`))
			if c.remoteOK != (err == nil) {
				t.Errorf("v%d m.federate=%s: remote join: %v", n, c.federate, err)
			}
			if err != nil && !strings.Contains(err.Error(), "m.federate") {
				t.Errorf("v%d: %v", n, err)
			}
			if err := r.check(r.member(carol, carol, `{"membership":"join"}`)); err != nil {
				t.Errorf("v%d m.federate=%s: local join: %v", n, c.federate, err)
			}
		}
	}
}

func TestAliases(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "non-member for own server", to: 5, ev: func(r *room) *pdu.Event {
			return r.event(bob, typeAliases, sp("b.test"), `{"aliases":["#x:b.test"]}`)
		}},
		{name: "other server", to: 5, want: "m.room.aliases: the state_key is not the sender's server", ev: func(r *room) *pdu.Event {
			return r.event(bob, typeAliases, sp("a.test"), `{"aliases":[]}`)
		}},
		{name: "no state_key", to: 5, want: "m.room.aliases: event has no state_key", ev: func(r *room) *pdu.Event {
			return r.event(bob, typeAliases, nil, `{"aliases":[]}`)
		}},
		{name: "ordinary state from v6", from: 6, want: "sender membership", ev: func(r *room) *pdu.Event {
			return r.event(bob, typeAliases, sp("b.test"), `{"aliases":[]}`)
		}},
		{name: "member with state level from v6", from: 6, ev: func(r *room) *pdu.Event {
			return r.event(alice, typeAliases, sp("a.test"), `{"aliases":[]}`)
		}},
	})
}

func TestNoCreateInState(t *testing.T) {
	r := newRoom(t, 10, "", false)
	ev := r.event(alice, "m.room.message", nil, `{"body":"hi"}`)
	err := Check(ev, func(k pdu.StateKey) *pdu.Event {
		if k.Type == typeCreate {
			return nil
		}
		return r.state[k]
	})
	if err == nil || !strings.Contains(err.Error(), "no m.room.create") {
		t.Fatalf("got %v", err)
	}
	if err := Check(ev, nil); err == nil {
		t.Fatal("allowed against an empty state")
	}
	if err := Check(nil, nil); err == nil {
		t.Fatal("nil event allowed")
	}
}

func TestV12RoomIDMustBeCreateID(t *testing.T) {
	r := newRoom(t, 12, "", false)
	other := newRoom(t, 12, `"topic":"other"`, false)
	ev := r.event(alice, "m.room.message", nil, `{"body":"hi"}`)
	err := Check(ev, func(k pdu.StateKey) *pdu.Event {
		if k.Type == typeCreate {
			return other.create
		}
		return r.state[k]
	})
	if err == nil || !strings.HasPrefix(err.Error(), "room_id:") {
		t.Fatalf("got %v", err)
	}
}
