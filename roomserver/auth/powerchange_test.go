package auth

import (
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// plBy is a power levels event by the sender with the content.
func plBy(r *room, sender, content string) *pdu.Event {
	return r.event(sender, typePowerLevels, sp(""), content)
}

func TestPowerLevelsValidation(t *testing.T) {
	byAlice := func(rest string, users ...string) func(r *room) *pdu.Event {
		return func(r *room) *pdu.Event { return plBy(r, alice, r.adminPL(rest, users...)) }
	}
	raw := func(content string) func(r *room) *pdu.Event {
		return func(r *room) *pdu.Event { return plBy(r, alice, content) }
	}
	runRuleCases(t, []ruleCase{
		{name: "integers", ev: byAlice(`"ban":50,"kick":-5,"events":{"m.room.name":50},"notifications":{"room":20},"users_default":0`, `"`+bob+`":99`)},
		{name: "string levels", to: 9, ev: byAlice(`"ban":"50","events":{"x":" +60 "},"notifications":{"room":"0010"}`, `"`+bob+`":"-7"`)},
		{name: "string level from v10", from: 10, want: "m.room.power_levels: content.ban: a string, not an integer", ev: byAlice(`"ban":"50"`)},
		{name: "string in events from v10", from: 10, want: `content.events["x"]: a string`, ev: byAlice(`"events":{"x":"50"}`)},
		{name: "string in users from v10", from: 10, want: `content.users["@bob:b.test"]: a string`, ev: byAlice("", `"`+bob+`":"50"`)},
		{name: "string not an integer", want: "content.kick", ev: byAlice(`"kick":"5x"`)},
		{name: "string with a fraction", to: 9, want: "content.kick: not an integer", ev: byAlice(`"kick":"5.0"`)},
		{name: "empty string", to: 9, want: "content.kick: not an integer", ev: byAlice(`"kick":" "`)},
		{name: "sign only", to: 9, want: "content.kick: not an integer", ev: byAlice(`"kick":"-"`)},
		{name: "huge string", to: 9, want: "content.kick: out of range", ev: byAlice(`"kick":"99999999999999999999"`)},
		{name: "float", to: 5, ev: byAlice(`"kick":50.9,"ban":5.114698E4`, `"`+bob+`":-1.5`)},
		{name: "huge float", to: 5, want: "content.ban: out of range", ev: byAlice(`"ban":1e300`)},
		{name: "huge integer", to: 5, want: "content.ban: out of range", ev: byAlice(`"ban":123456789012345678901234567890`)},
		{name: "bool", want: "content.ban: not an integer", ev: byAlice(`"ban":true`)},
		{name: "null", want: "content.ban: not an integer", ev: byAlice(`"ban":null`)},
		{name: "object", want: "content.invite: not an integer", ev: byAlice(`"invite":{"level":5}`)},
		{name: "array in events", want: `content.events["m.room.name"]: not an integer`, ev: byAlice(`"events":{"m.room.name":[50]}`)},
		{name: "events not an object", want: "content.events is not an object", ev: byAlice(`"events":[]`)},
		{name: "notifications not an object", want: "content.notifications is not an object", ev: byAlice(`"notifications":50`)},
		{name: "users not an object", want: "content.users is not an object", ev: raw(`{"users":["@alice:a.test"]}`)},
		{name: "users key not a user ID", want: `content.users: "alice" is not a user ID`, ev: byAlice("", `"alice":50`)},
		{name: "users key without server", want: "is not a user ID", ev: byAlice("", `"@alice":50`)},
		{name: "historical user ID", ev: byAlice("", `"@Ünïcode:b.test":50`)},
		{name: "unknown keys ignored", ev: byAlice(`"historical":"yes","org.example":{"x":[]}`)},
	})
}

// levelsRoom sets up carol (50) able to send power levels, bob at 40 and dave
// at 50, with the extra power levels fields.
func levelsRoom(rest string) func(r *room) {
	return func(r *room) {
		r.set(carol, membershipJoin)
		r.set(bob, membershipJoin)
		r.powerLevels(r.adminPL(rest, `"`+carol+`":50`, `"`+bob+`":40`, `"`+dave+`":50`))
	}
}

func TestPowerLevelsChanges(t *testing.T) {
	base := `"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":60}`
	// carolPL is carol's new content: base with a change.
	carolPL := func(rest string, users ...string) func(r *room) *pdu.Event {
		return func(r *room) *pdu.Event {
			if len(users) == 0 {
				users = []string{`"` + carol + `":50`, `"` + bob + `":40`, `"` + dave + `":50`}
			}
			return plBy(r, carol, r.adminPL(rest, users...))
		}
	}
	same := []string{`"` + carol + `":50`, `"` + bob + `":40`, `"` + dave + `":50`}
	runRuleCases(t, []ruleCase{
		{name: "first power levels", ev: func(r *room) *pdu.Event {
			return plBy(r, alice, r.adminPL(`"ban":1000,"events":{"x":1000}`, `"`+bob+`":1000`))
		}},
		{name: "unchanged", setup: levelsRoom(base), ev: carolPL(base)},
		{name: "raise ban above own", setup: levelsRoom(base), want: "m.room.power_levels: the new ban is above the sender's power level",
			ev: carolPL(base + `,"ban":51`)},
		{name: "add redact at own level", setup: levelsRoom(base), ev: carolPL(base + `,"redact":50`)},
		{name: "lower ban", setup: levelsRoom(base), ev: carolPL(base + `,"ban":10`)},
		{name: "change kick set above own", setup: levelsRoom(base), want: "the current kick is above",
			ev: carolPL(`"kick":10,"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":60}`)},
		{name: "remove kick set above own", setup: levelsRoom(base), want: "the current kick is above",
			ev: carolPL(`"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":60}`)},
		{name: "string equal to integer is no change", to: 9, setup: levelsRoom(`"kick":"60","events":{"m.room.tombstone":" 60"},"notifications":{"room":60}`),
			ev: carolPL(base)},
		{name: "add event above own", setup: levelsRoom(base), want: `the new events["m.room.topic"] is above`,
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50,"m.room.topic":51},"notifications":{"room":60}`)},
		{name: "add event at own", setup: levelsRoom(base),
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50,"m.room.topic":50},"notifications":{"room":60}`)},
		{name: "change event below own", setup: levelsRoom(base),
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":0},"notifications":{"room":60}`)},
		{name: "remove event above own", setup: levelsRoom(base), want: `the current events["m.room.tombstone"] is above`,
			ev: carolPL(`"kick":60,"events":{"m.room.name":50},"notifications":{"room":60}`)},
		{name: "notifications above own", from: 6, setup: levelsRoom(base), want: `the current notifications["room"] is above`,
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":0}`)},
		{name: "notifications free before v6", to: 5, setup: levelsRoom(base),
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":0,"other":99}`)},
		{name: "new notifications above own", from: 6, setup: levelsRoom(base), want: `the new notifications["other"] is above`,
			ev: carolPL(`"kick":60,"events":{"m.room.tombstone":60,"m.room.name":50},"notifications":{"room":60,"other":51}`)},
		{name: "demote lower user", setup: levelsRoom(base), ev: carolPL(base, `"`+carol+`":50`, `"`+bob+`":0`, `"`+dave+`":50`)},
		{name: "remove lower user", setup: levelsRoom(base), ev: carolPL(base, `"`+carol+`":50`, `"`+dave+`":50`)},
		{name: "demote peer", setup: levelsRoom(base), want: "cannot change or remove the level of @dave:c.test",
			ev: carolPL(base, `"`+carol+`":50`, `"`+bob+`":40`, `"`+dave+`":49`)},
		{name: "demote self", setup: levelsRoom(base), ev: carolPL(base, `"`+carol+`":10`, `"`+bob+`":40`, `"`+dave+`":50`)},
		{name: "promote to own", setup: levelsRoom(base), ev: carolPL(base, `"`+carol+`":50`, `"`+bob+`":50`, `"`+dave+`":50`)},
		{name: "promote above own", setup: levelsRoom(base), want: "cannot give @bob:b.test a level above the sender's",
			ev: carolPL(base, `"`+carol+`":50`, `"`+bob+`":51`, `"`+dave+`":50`)},
		{name: "promote self", setup: levelsRoom(base), want: "cannot give @carol:a.test a level above",
			ev: carolPL(base, `"`+carol+`":51`, `"`+bob+`":40`, `"`+dave+`":50`)},
		{name: "add user at own", setup: levelsRoom(base), ev: carolPL(base, append([]string{`"` + erin + `":50`}, same...)...)},
		{name: "remove the creator", to: 11, setup: levelsRoom(base), want: "cannot change or remove the level of @alice:a.test",
			ev: func(r *room) *pdu.Event {
				return plBy(r, carol, `{`+base+`,"users":{"`+carol+`":50,"`+bob+`":40,"`+dave+`":50}}`)
			}},
		{name: "creator is unbounded", from: 12, setup: levelsRoom(base), ev: func(r *room) *pdu.Event {
			return plBy(r, alice, `{"ban":9007199254740991,"users":{"`+dave+`":9007199254740991}}`)
		}},
		{name: "creator listed", from: 12, want: "content.users lists the room creator @alice:a.test", ev: func(r *room) *pdu.Event {
			return plBy(r, alice, `{"users":{"`+alice+`":100}}`)
		}},
	})
}
