package pushrules

import "strings"

// RoomContext is what evaluation needs to know of the room and the sender; it is
// the same for every user evaluated for one event.
type RoomContext struct {
	// MemberCount is the number of joined members (room_member_count).
	MemberCount int64
	// SenderLevel is the sender's power level, and NotificationLevel the
	// level a notification key ("room") needs; nil means 50 for every key
	// (sender_notification_permission).
	SenderLevel       int64
	NotificationLevel func(key string) int64
	// DisplayName returns the user's display name in the room, "" when
	// none (contains_display_name); nil means none.
	DisplayName func(userID string) string
}

// DefaultNotificationLevel is the level of a notification key that the
// power levels do not set.
const DefaultNotificationLevel = 50

type memoKey struct {
	c    *Compiled
	mask uint64
}

// Evaluate returns the result of the first rule of c that matches ev for
// owner, or nil when none does. The caller leaves out the sender (users
// are not notified of their own events). room must be the same for every
// call with one ev.
func (c *Compiled) Evaluate(ev *Event, owner string, room *RoomContext) *Result {
	if c.usesDisplayName || len(c.ownerConds) > maxOwnerConds {
		return c.eval(ev, owner, room, 0, false)
	}
	var mask uint64
	for i, oc := range c.ownerConds {
		if oc.ownerMatch(ev, owner) {
			mask |= 1 << i
		}
	}
	key := memoKey{c, mask}
	if r, ok := ev.memo[key]; ok {
		return r
	}
	r := c.eval(ev, owner, room, mask, true)
	if ev.memo == nil {
		ev.memo = map[memoKey]*Result{}
	}
	ev.memo[key] = r
	return r
}

func (c *Compiled) eval(ev *Event, owner string, room *RoomContext, mask uint64, useMask bool) *Result {
	for _, r := range c.ordered {
		if r.matches(ev, owner, room, mask, useMask) {
			return r.result
		}
	}
	if r := c.room[ev.roomID]; r != nil {
		return r.result
	}
	if r := c.sender[ev.sender]; r != nil {
		return r.result
	}
	for _, r := range c.underride {
		if r.matches(ev, owner, room, mask, useMask) {
			return r.result
		}
	}
	return nil
}

func (r *crule) matches(ev *Event, owner string, room *RoomContext, mask uint64, useMask bool) bool {
	if r.content != nil {
		return ev.hasBody && r.content.Match(ev.body.lower)
	}
	for i := range r.conds {
		cd := &r.conds[i]
		var ok bool
		if cd.owner && useMask {
			ok = mask&(1<<cd.ownerBit) != 0
		} else {
			ok = cd.match(ev, owner, room)
		}
		if !ok {
			return false
		}
	}
	return true
}

// ownerMatch answers an owner condition for owner.
func (cd *ccond) ownerMatch(ev *Event, owner string) bool {
	switch cd.kind {
	case cMatch:
		s, ok := ev.scalars[cd.key]
		return ok && s.kind == kString && s.lower == strings.ToLower(owner)
	case cPropIs:
		s, ok := ev.scalars[cd.key]
		return ok && s.kind == kString && s.str == owner
	case cPropContains:
		return ev.containsString(cd.key, owner)
	}
	return false
}

func (cd *ccond) match(ev *Event, owner string, room *RoomContext) bool {
	if cd.owner {
		return cd.ownerMatch(ev, owner)
	}
	switch cd.kind {
	case cMatch:
		s, ok := ev.scalars[cd.key]
		return ok && s.kind == kString && cd.glob.Match(s.lower)
	case cPropIs:
		s, ok := ev.scalars[cd.key]
		return ok && s.equal(cd.value)
	case cPropContains:
		return ev.contains(cd.key, cd.value)
	case cDisplayName:
		if !ev.hasBody || room.DisplayName == nil {
			return false
		}
		name := strings.ToLower(room.DisplayName(owner))
		return name != "" && containsWord(ev.body.lower, name)
	case cMemberCount:
		n := room.MemberCount
		switch cd.op {
		case "==":
			return n == cd.n
		case "<":
			return n < cd.n
		case ">":
			return n > cd.n
		case "<=":
			return n <= cd.n
		case ">=":
			return n >= cd.n
		}
	case cSenderPerm:
		need := int64(DefaultNotificationLevel)
		if room.NotificationLevel != nil {
			need = room.NotificationLevel(cd.key)
		}
		return room.SenderLevel >= need
	}
	return false
}
