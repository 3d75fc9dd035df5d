package auth

import (
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// SelectAuthEvents returns the state keys of the events that an event with
// these fields must cite as its auth_events (server-server API "Auth events
// selection"), for the events of the room state that exist at those keys:
//
//   - the m.room.create event, except in versions where the room ID is
//     derived from it (12+), which must not cite it;
//   - the m.room.power_levels event and the sender's m.room.member event;
//   - for m.room.member events: the target's m.room.member event; the
//     m.room.join_rules event for a join, invite or knock; for an invite with
//     content.third_party_invite, the m.room.third_party_invite event whose
//     state key is content.third_party_invite.signed.token; for a join with
//     content.join_authorised_via_users_server (versions 8+), that user's
//     m.room.member event.
//
// An m.room.create event cites nothing: the result is nil. Content values of
// the wrong type select nothing (Check refuses such events anyway).
func SelectAuthEvents(ver *pdu.RoomVersion, evType string, stateKey *string, sender string, content []byte) []pdu.StateKey {
	if evType == typeCreate {
		return nil
	}
	keys := make([]pdu.StateKey, 0, 6)
	add := func(k pdu.StateKey) {
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	if !ver.CreateEventIsRoomID {
		add(pdu.StateKey{Type: typeCreate})
	}
	add(pdu.StateKey{Type: typePowerLevels})
	add(pdu.StateKey{Type: typeMember, StateKey: sender})
	if evType != typeMember || stateKey == nil {
		return keys
	}
	add(pdu.StateKey{Type: typeMember, StateKey: *stateKey})
	m := gjson.GetBytes(content, "membership")
	if m.Type != gjson.String {
		return keys
	}
	switch m.Str {
	case membershipJoin, membershipInvite, membershipKnock:
		add(pdu.StateKey{Type: typeJoinRules})
	}
	if m.Str == membershipInvite {
		if token := gjson.GetBytes(content, "third_party_invite.signed.token"); token.Type == gjson.String {
			add(pdu.StateKey{Type: typeThirdPartyInvite, StateKey: token.Str})
		}
	}
	if m.Str == membershipJoin && ver.RestrictedJoins {
		if a := gjson.GetBytes(content, keyAuthorisingUser); a.Type == gjson.String {
			add(pdu.StateKey{Type: typeMember, StateKey: a.Str})
		}
	}
	return keys
}

// CheckAuthEvents checks an event against its own auth events: first the
// rules about the auth_events list (no two entries for one type and state
// key; only entries the auth events selection picks; an m.room.create among
// them, except in version 12+; every entry from the event's room), then
// Check against the state those events form.
//
// authEvents must hold the events the event's auth_events name (other
// events are ignored) and, in room versions whose room ID is derived from
// the create event (12+), the room's m.room.create event, whose ID is the
// room ID with "$" instead of "!". If some are missing it returns a
// *MissingAuthEventsError. The caller must also refuse the event if any of
// those events was itself rejected (the rule "entries which were themselves
// rejected"), as only the caller knows.
func CheckAuthEvents(ev *pdu.Event, authEvents []*pdu.Event) error {
	var c Checker
	return c.CheckAuthEvents(ev, authEvents)
}

// CheckAuthEvents is CheckAuthEvents using the Checker's cache.
func (c *Checker) CheckAuthEvents(ev *pdu.Event, authEvents []*pdu.Event) error {
	const rule = "auth_events"
	if ev == nil || ev.Version() == nil {
		return refuse("event", "no event or no room version")
	}
	if ev.Type() == typeCreate {
		return c.Check(ev, nil)
	}
	ver := ev.Version()
	byID := make(map[string]*pdu.Event, len(authEvents))
	for _, a := range authEvents {
		if a != nil {
			byID[a.EventID()] = a
		}
	}
	ids := ev.AuthEventIDs()
	cited := make([]*pdu.Event, 0, len(ids))
	var missing []string
	for _, id := range ids {
		if a := byID[id]; a != nil {
			cited = append(cited, a)
		} else {
			missing = append(missing, id)
		}
	}
	var create *pdu.Event
	if ver.CreateEventIsRoomID {
		createID := createEventIDOf(ev.RoomID())
		if createID == "" {
			return refuse("room_id", "the room ID is not derived from an m.room.create event")
		}
		if create = byID[createID]; create == nil {
			missing = append(missing, createID)
		}
	}
	if len(missing) > 0 {
		return &MissingAuthEventsError{IDs: missing}
	}

	state := make(map[pdu.StateKey]*pdu.Event, len(cited)+1)
	for _, a := range cited {
		k := a.StateTuple()
		if _, dup := state[k]; dup {
			return refuse(rule, "more than one entry for "+describeKey(k))
		}
		state[k] = a
	}
	selected := SelectAuthEvents(ver, ev.Type(), ev.StateKey(), ev.Sender(), ev.Content())
	for _, a := range cited {
		if !a.IsState() || !containsKey(selected, a.StateTuple()) {
			return refuse(rule, "entry "+a.EventID()+" "+describeKey(a.StateTuple())+" is not one the auth events selection picks")
		}
	}
	createKey := pdu.StateKey{Type: typeCreate}
	if create == nil {
		if state[createKey] == nil {
			return refuse(rule, "no m.room.create event among the entries")
		}
	} else {
		if create.Type() != typeCreate || !create.StateKeyEquals("") {
			return refuse("room_id", "the room ID is not derived from an m.room.create event")
		}
		state[createKey] = create
	}
	for _, a := range cited {
		if a.RoomID() != ev.RoomID() {
			return refuse(rule, "entry "+a.EventID()+" is from another room")
		}
	}
	return c.Check(ev, func(k pdu.StateKey) *pdu.Event { return state[k] })
}

func containsKey(keys []pdu.StateKey, k pdu.StateKey) bool {
	for _, have := range keys {
		if have == k {
			return true
		}
	}
	return false
}

func describeKey(k pdu.StateKey) string {
	return fmt.Sprintf("(%s, %q)", k.Type, k.StateKey)
}
