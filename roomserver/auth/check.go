package auth

import (
	"strings"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// StateLookup returns the state event of the room at a (type, state_key), or
// nil when the state has none. It is the state an event is checked against:
// its auth events, the state before it, or the current state.
type StateLookup func(k pdu.StateKey) *pdu.Event

// Check reports whether the event passes the authorization rules of its room
// version against the state. It returns nil when the event is allowed and a
// *NotAllowedError naming the refusing rule otherwise. The rules about the
// event's auth_events list are not part of Check; see CheckAuthEvents.
//
// Check parses the power levels event at each call; to check many events
// against mostly the same state (state resolution), use a Checker.
func Check(ev *pdu.Event, state StateLookup) error {
	var c Checker
	return c.Check(ev, state)
}

// plCacheSize is how many parsed power levels a Checker keeps. Iterative
// auth checks alternate between few power levels events; a handful of
// entries saves almost all re-parsing.
const plCacheSize = 4

// Checker applies the authorization rules like Check, keeping the parsed
// contents of the last create and power levels events it saw, keyed by event
// pointer, so that checking thousands of events against the same state does
// not parse them again. The zero value is ready to use. A Checker is not safe
// for concurrent use.
type Checker struct {
	create createInfo
	pls    [plCacheSize]plEntry
	plNext int
}

type plEntry struct {
	used       bool
	create, pl *pdu.Event
	levels     *PowerLevels
	err        error
}

func (c *Checker) createInfo(ev *pdu.Event) *createInfo {
	if c.create.ev != ev {
		c.create = parseCreate(ev)
	}
	return &c.create
}

func (c *Checker) powerLevels(create *createInfo, pl *pdu.Event) (*PowerLevels, error) {
	for i := range c.pls {
		e := &c.pls[i]
		if e.used && e.create == create.ev && e.pl == pl {
			return e.levels, e.err
		}
	}
	levels, err := create.powerLevels(pl)
	c.pls[c.plNext] = plEntry{used: true, create: create.ev, pl: pl, levels: levels, err: err}
	c.plNext = (c.plNext + 1) % plCacheSize
	return levels, err
}

// checkCtx is the state of one Check call.
type checkCtx struct {
	c      *Checker
	ev     *pdu.Event
	ver    *pdu.RoomVersion
	state  StateLookup
	create *createInfo
}

// Check is the package-level Check, reusing the events the Checker parsed
// in earlier calls.
func (c *Checker) Check(ev *pdu.Event, state StateLookup) error {
	if ev == nil || ev.Version() == nil {
		return refuse("event", "no event or no room version")
	}
	// Rule 1: m.room.create depends on nothing but the event.
	if ev.Type() == typeCreate {
		return checkCreate(ev)
	}
	x := checkCtx{c: c, ev: ev, ver: ev.Version(), state: state}
	createEv := x.get(typeCreate, "")
	if createEv == nil {
		return refuse("m.room.create", "the room state has no m.room.create event")
	}
	x.create = c.createInfo(createEv)

	// Version 12, rule 2: the room ID is the create event's ID.
	if x.ver.CreateEventIsRoomID && !isRoomIDOf(ev.RoomID(), createEv.EventID()) {
		return refuse("room_id", "the room ID is not derived from the room's m.room.create event")
	}
	// m.federate (rule 3; 4 in version 12).
	if !x.create.federate && !sameDomain(ev.Sender(), createEv.Sender()) {
		return refuse("m.federate", "the room does not federate and the sender is on another server")
	}
	// Versions 1 to 5, rule 4: m.room.aliases.
	if x.ver.SpecialCasedAliases && ev.Type() == typeAliases {
		return checkAliases(ev)
	}
	if ev.Type() == typeMember {
		return x.checkMember()
	}
	if x.membership(ev.Sender()) != membershipJoin {
		return refuse("sender membership", "the sender is not joined to the room")
	}
	levels, err := x.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := levels.UserLevel(ev.Sender())
	if ev.Type() == typeThirdPartyInvite {
		if senderLevel < levels.Invite {
			return refuse("m.room.third_party_invite", "the sender's power level is below the invite level")
		}
		return nil
	}
	if senderLevel < levels.EventLevel(ev.Type(), ev.IsState()) {
		return refuse("required power level", "the sender's power level is below the level required for "+ev.Type())
	}
	if sk := ev.StateKey(); sk != nil && strings.HasPrefix(*sk, "@") && *sk != ev.Sender() {
		return refuse("state_key", "a state_key starting with @ must be the sender's user ID")
	}
	if ev.Type() == typePowerLevels {
		return x.checkPowerLevels(levels, senderLevel)
	}
	if ev.Type() == typeRedaction && redactionIsAuthRule(x.ver) {
		return checkRedactionV1(ev, levels, senderLevel)
	}
	return nil
}

// get looks a state event up; a nil lookup is an empty state.
func (x *checkCtx) get(evType, stateKey string) *pdu.Event {
	if x.state == nil {
		return nil
	}
	return x.state(pdu.StateKey{Type: evType, StateKey: stateKey})
}

// membership returns the user's current membership, "" when there is none
// (or the member event's content has no string membership).
func (x *checkCtx) membership(userID string) string {
	if ev := x.get(typeMember, userID); ev != nil {
		return ev.Membership()
	}
	return ""
}

// powerLevels returns the effective power levels of the state, from the
// Checker's cache when it parsed the same events before.
func (x *checkCtx) powerLevels() (*PowerLevels, error) {
	levels, err := x.c.powerLevels(x.create, x.get(typePowerLevels, ""))
	if err != nil {
		return nil, refuse("m.room.power_levels", "the room's power levels are invalid: "+err.Error())
	}
	return levels, nil
}

// checkAliases implements rule 4 of versions 1 to 5.
func checkAliases(ev *pdu.Event) error {
	const rule = "m.room.aliases"
	sk := ev.StateKey()
	if sk == nil {
		return refuse(rule, "event has no state_key")
	}
	if d, ok := domainOf(ev.Sender()); !ok || d != *sk {
		return refuse(rule, "the state_key is not the sender's server name")
	}
	return nil
}

// isRoomIDOf reports whether roomID is derived from the create event ID as
// in version 12: the same ID with the sigil "!" instead of "$". It compares
// in place rather than building the string, as it runs at every Check.
func isRoomIDOf(roomID, createEventID string) bool {
	return len(roomID) > 1 && roomID[0] == '!' && len(createEventID) > 1 &&
		createEventID[0] == '$' && roomID[1:] == createEventID[1:]
}

// createEventIDOf is the create event ID a version 12 room ID is derived from.
func createEventIDOf(roomID string) string {
	if len(roomID) < 2 || roomID[0] != '!' {
		return ""
	}
	return "$" + roomID[1:]
}
