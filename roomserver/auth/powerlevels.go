package auth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// CreatorLevel is the power level of a room creator in room versions whose
// creators are privileged (12+, MSC4289): "infinitely high". Every level a
// power levels event can hold in those versions is at most 2^53-1, so this
// compares above all of them and equal only to another creator.
const CreatorLevel int64 = math.MaxInt64

// Defaults of the m.room.power_levels fields (client-server API, event
// schema of m.room.power_levels), used when a field or the whole event is
// absent.
const (
	DefaultBan           = 50
	DefaultKick          = 50
	DefaultRedact        = 50
	DefaultInvite        = 0
	DefaultStateDefault  = 50
	DefaultEventsDefault = 0
	DefaultUsersDefault  = 0
	DefaultNotification  = 50 // notifications.room, and any other key
	// DefaultCreatorLevel is the room creator's level in versions 1 to 11
	// when the room has no m.room.power_levels event.
	DefaultCreatorLevel = 100
)

// canonicalMax is the largest integer canonical JSON allows (2^53-1); from
// room version 10 power levels must lie within ±canonicalMax.
const canonicalMax = 1<<53 - 1

// PowerLevels is the effective content of a room's m.room.power_levels
// event: every field with the spec's default filled in. Build it with
// ParsePowerLevels (an event content alone) or PowerLevelsFromState (the
// room's create and power levels events, so that creators count). The value
// is read-only once built; PowerLevels returned by this package may be shared.
type PowerLevels struct {
	Ban, Kick, Invite, Redact                 int64
	StateDefault, EventsDefault, UsersDefault int64
	// Events maps event types to the level needed to send them.
	Events map[string]int64
	// Notifications maps notification keys ("room") to the level needed.
	Notifications map[string]int64
	// Users maps user IDs to their level. In versions 1 to 11, when the room
	// has no power levels event, it holds the creator at 100.
	Users map[string]int64
	// Creators are the users with CreatorLevel: in room versions with
	// privileged creators, the create event's sender and its
	// additional_creators. Empty in earlier versions.
	Creators []string

	present   uint8 // bit i set: scalar field i was given in the content
	fromEvent bool  // built from an actual m.room.power_levels event
}

// The scalar fields, indexed for the "added, changed or removed" rule.
const (
	fieldUsersDefault = iota
	fieldEventsDefault
	fieldStateDefault
	fieldBan
	fieldRedact
	fieldKick
	fieldInvite
	numFields
)

func fieldName(i int) string {
	switch i {
	case fieldUsersDefault:
		return "users_default"
	case fieldEventsDefault:
		return "events_default"
	case fieldStateDefault:
		return "state_default"
	case fieldBan:
		return "ban"
	case fieldRedact:
		return "redact"
	case fieldKick:
		return "kick"
	default:
		return "invite"
	}
}

func fieldIndex(name string) int {
	switch name {
	case "users_default":
		return fieldUsersDefault
	case "events_default":
		return fieldEventsDefault
	case "state_default":
		return fieldStateDefault
	case "ban":
		return fieldBan
	case "redact":
		return fieldRedact
	case "kick":
		return fieldKick
	case "invite":
		return fieldInvite
	}
	return -1
}

func (p *PowerLevels) field(i int) *int64 {
	switch i {
	case fieldUsersDefault:
		return &p.UsersDefault
	case fieldEventsDefault:
		return &p.EventsDefault
	case fieldStateDefault:
		return &p.StateDefault
	case fieldBan:
		return &p.Ban
	case fieldRedact:
		return &p.Redact
	case fieldKick:
		return &p.Kick
	default:
		return &p.Invite
	}
}

func (p *PowerLevels) has(i int) bool { return p.present&(1<<i) != 0 }

// defaultPowerLevels returns the levels of a room without a power levels event.
func defaultPowerLevels() *PowerLevels {
	return &PowerLevels{
		Ban: DefaultBan, Kick: DefaultKick, Redact: DefaultRedact, Invite: DefaultInvite,
		StateDefault: DefaultStateDefault, EventsDefault: DefaultEventsDefault,
		UsersDefault: DefaultUsersDefault,
	}
}

// ParsePowerLevels parses and validates the content of an m.room.power_levels
// event for a room version. It refuses, with an error naming the property:
// content that is not an object; a "users", "events" or "notifications" that
// is not an object; a "users" key that is not a user ID; and any level that
// is not an integer as the version allows: JSON integers in every version,
// strings of an integer in versions 1 to 9 (optional sign and surrounding
// whitespace), and in versions 1 to 5 (non-strict canonical JSON) numbers
// with a fraction or exponent, truncated toward zero. Values must fit in an
// int64; from version 10 they must lie within canonical JSON's ±(2^53-1).
//
// Versions 1 to 9 only require "users" to be valid; the other properties
// are checked here all the same, because Synapse cannot use such an event
// either (it fails converting the value whenever it reads it).
func ParsePowerLevels(ver *pdu.RoomVersion, content []byte) (*PowerLevels, error) {
	if ver == nil {
		return nil, errors.New("power levels: no room version")
	}
	root := gjson.ParseBytes(content)
	if !root.IsObject() {
		return nil, errors.New("content is not an object")
	}
	p := defaultPowerLevels()
	p.fromEvent = true
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "events", "notifications", "users":
			var m map[string]int64
			m, err = parseLevelMap(ver, k.Str, v)
			switch k.Str {
			case "events":
				p.Events = m
			case "notifications":
				p.Notifications = m
			default:
				p.Users = m
			}
		default:
			i := fieldIndex(k.Str)
			if i < 0 {
				return true // not a power levels property: ignored
			}
			var l int64
			l, err = parseLevel(ver, v)
			if err != nil {
				err = fmt.Errorf("content.%s: %w", k.Str, err)
				break
			}
			*p.field(i) = l
			p.present |= 1 << i
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func parseLevelMap(ver *pdu.RoomVersion, name string, v gjson.Result) (map[string]int64, error) {
	if !v.IsObject() {
		return nil, fmt.Errorf("content.%s is not an object", name)
	}
	// Sizing the map first halves the cost of a large "users" map.
	n := 0
	v.ForEach(func(_, _ gjson.Result) bool { n++; return true })
	m := make(map[string]int64, n)
	var err error
	v.ForEach(func(k, lv gjson.Result) bool {
		if name == "users" && !looseUserID(k.Str) {
			err = fmt.Errorf("content.users: %q is not a user ID", k.Str)
			return false
		}
		var l int64
		if l, err = parseLevel(ver, lv); err != nil {
			err = fmt.Errorf("content.%s[%q]: %w", name, k.Str, err)
			return false
		}
		m[k.Str] = l
		return true
	})
	return m, err
}

var (
	errNotInteger = errors.New("not an integer")
	errOutOfRange = errors.New("out of range")
)

// parseLevel converts one power level value as the room version allows.
func parseLevel(ver *pdu.RoomVersion, v gjson.Result) (int64, error) {
	switch v.Type {
	case gjson.Number:
		return parseNumberLevel(ver, v.Raw)
	case gjson.String:
		if ver.IntegerPowerLevels {
			return 0, errors.New("a string, not an integer")
		}
		return parseStringLevel(v.Str)
	}
	return 0, errNotInteger
}

func parseNumberLevel(ver *pdu.RoomVersion, raw string) (int64, error) {
	if !strings.ContainsAny(raw, ".eE") {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return 0, errOutOfRange
		}
		if ver.StrictCanonicalJSON && (n > canonicalMax || n < -canonicalMax) {
			return 0, errOutOfRange
		}
		return n, nil
	}
	// A fraction or an exponent: only rooms without strict canonical JSON
	// (versions 1 to 5) can carry one; the spec has it truncated.
	if ver.StrictCanonicalJSON {
		return 0, errNotInteger
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errOutOfRange
	}
	f = math.Trunc(f)
	// Synapse keeps arbitrary precision here; an int64 covers every level a
	// real room uses, and larger values are refused rather than wrapped.
	if f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, errOutOfRange
	}
	return int64(f), nil
}

// parseStringLevel reads the string form of versions 1 to 9: optional
// leading and trailing whitespace, an optional sign, and base 10 digits.
func parseStringLevel(s string) (int64, error) {
	s = strings.TrimSpace(s)
	digits := s
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, errNotInteger
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return 0, errNotInteger
		}
	}
	n, err := strconv.ParseInt(s, 10, 64) // accepts the sign, including "+"
	if err != nil {
		return 0, errOutOfRange
	}
	return n, nil
}

// PowerLevelsFromState returns the effective power levels of a room given its
// m.room.create event (required) and its m.room.power_levels event (nil when
// the room has none). Without a power levels event the creator has 100 in
// versions 1 to 11 and everyone else the defaults; in versions with
// privileged creators the creators have CreatorLevel whatever the event says.
func PowerLevelsFromState(create, powerLevels *pdu.Event) (*PowerLevels, error) {
	if create == nil {
		return nil, errors.New("power levels: no m.room.create event")
	}
	info := parseCreate(create)
	return info.powerLevels(powerLevels)
}

// UserLevel returns the power level of a user.
func (p *PowerLevels) UserLevel(userID string) int64 {
	if p.IsCreator(userID) {
		return CreatorLevel
	}
	if l, ok := p.Users[userID]; ok {
		return l
	}
	return p.UsersDefault
}

// IsCreator reports whether the user is one of the privileged creators of a
// room version 12+ room (always false in earlier versions).
func (p *PowerLevels) IsCreator(userID string) bool {
	for _, c := range p.Creators {
		if c == userID {
			return true
		}
	}
	return false
}

// EventLevel returns the level needed to send an event of the type: its
// entry in "events", else state_default for state events and
// events_default for the others (the spec's "required power level").
func (p *PowerLevels) EventLevel(eventType string, isState bool) int64 {
	if l, ok := p.Events[eventType]; ok {
		return l
	}
	if isState {
		return p.StateDefault
	}
	return p.EventsDefault
}

// NotificationLevel returns the level needed to trigger the notification
// key (e.g. "room" for @room), 50 unless set.
func (p *PowerLevels) NotificationLevel(key string) int64 {
	if l, ok := p.Notifications[key]; ok {
		return l
	}
	return DefaultNotification
}
