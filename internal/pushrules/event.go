package pushrules

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Event is an event parsed once for evaluation against many rulesets: its
// properties flattened into a table keyed by canonical dot-separated path.
// It also remembers results for users that share a *Compiled (see
// Compiled.Evaluate), so it is meant for one event's evaluation against one
// Room, from one goroutine.
type Event struct {
	scalars map[string]scalar
	arrays  map[string][]scalar
	// sets are the string elements of long arrays, built on first use, so
	// that "is this user in user_ids" stays O(1) for an event that
	// mentions thousands.
	sets    map[string]map[string]struct{}
	roomID  string
	sender  string
	body    *scalar // content.body when it is a string
	hasBody bool

	memo map[memoKey]*Result
}

// scalar is a non-compound JSON value.
type scalar struct {
	kind  scalarKind
	str   string // kString
	lower string // kString, lowercased for event_match
	num   int64  // kInt
	b     bool   // kBool
}

type scalarKind uint8

const (
	kOther  scalarKind = iota // a float, or an integer outside ±(2^53-1)
	kString                   //
	kInt                      //
	kBool                     //
	kNull                     //
)

const maxSafeInt = 1<<53 - 1

// maxDepth bounds the nesting flattened; events are at most 64 KiB, and
// canonical JSON allows no more than this anyway in practice.
const maxDepth = 64

// NewEvent parses an event's JSON (federation or client form).
func NewEvent(raw []byte) (*Event, error) {
	if !gjson.ValidBytes(raw) {
		return nil, errors.New("push rules: the event is not valid JSON")
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		return nil, errors.New("push rules: the event is not a JSON object")
	}
	ev := &Event{
		scalars: make(map[string]scalar, 32),
		arrays:  map[string][]scalar{},
	}
	ev.flatten(root, "", 0)
	if s, ok := ev.scalars["room_id"]; ok && s.kind == kString {
		ev.roomID = s.str
	}
	if s, ok := ev.scalars["sender"]; ok && s.kind == kString {
		ev.sender = s.str
	}
	if s, ok := ev.scalars["content.body"]; ok && s.kind == kString {
		ev.body, ev.hasBody = &s, true
	}
	return ev, nil
}

func (ev *Event) flatten(obj gjson.Result, prefix string, depth int) {
	if depth > maxDepth {
		return
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		path := escapeSegment(k.Str)
		if depth > 0 {
			path = prefix + "." + path
		}
		switch {
		case v.IsObject():
			ev.flatten(v, path, depth+1)
		case v.IsArray():
			var elems []scalar
			v.ForEach(func(_, e gjson.Result) bool {
				if s, ok := scalarOf(e); ok {
					elems = append(elems, s)
				}
				return true
			})
			ev.arrays[path] = elems
		default:
			if s, ok := scalarOf(v); ok {
				ev.scalars[path] = s
			}
		}
		return true
	})
}

// scalarOf converts a non-compound gjson value.
func scalarOf(v gjson.Result) (scalar, bool) {
	switch v.Type {
	case gjson.String:
		return scalar{kind: kString, str: v.Str, lower: strings.ToLower(v.Str)}, true
	case gjson.True, gjson.False:
		return scalar{kind: kBool, b: v.Type == gjson.True}, true
	case gjson.Null:
		return scalar{kind: kNull}, true
	case gjson.Number:
		if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil && n >= -maxSafeInt && n <= maxSafeInt {
			return scalar{kind: kInt, num: n}, true
		}
		return scalar{kind: kOther}, true
	}
	return scalar{}, false
}

// parseScalar parses a condition's value: a string, an integer in the safe
// range, a boolean or null.
func parseScalar(raw json.RawMessage) (scalar, bool) {
	if len(raw) == 0 || !gjson.ValidBytes(raw) {
		return scalar{}, false
	}
	s, ok := scalarOf(gjson.ParseBytes(raw))
	if !ok || s.kind == kOther {
		return scalar{}, false
	}
	return s, true
}

// equal is the exact comparison of event_property_is and
// event_property_contains: same type and value, no casting.
func (s scalar) equal(o scalar) bool {
	if s.kind != o.kind {
		return false
	}
	switch s.kind {
	case kString:
		return s.str == o.str
	case kInt:
		return s.num == o.num
	case kBool:
		return s.b == o.b
	case kNull:
		return true
	}
	return false
}

// setThreshold is the array length from which contains looks up a set.
const setThreshold = 16

// containsString reports whether the array at path holds the string v.
func (ev *Event) containsString(path, v string) bool {
	arr, ok := ev.arrays[path]
	if !ok {
		return false
	}
	if len(arr) < setThreshold {
		for _, e := range arr {
			if e.kind == kString && e.str == v {
				return true
			}
		}
		return false
	}
	set, ok := ev.sets[path]
	if !ok {
		set = make(map[string]struct{}, len(arr))
		for _, e := range arr {
			if e.kind == kString {
				set[e.str] = struct{}{}
			}
		}
		if ev.sets == nil {
			ev.sets = map[string]map[string]struct{}{}
		}
		ev.sets[path] = set
	}
	_, ok = set[v]
	return ok
}

// contains reports whether the array at path holds v.
func (ev *Event) contains(path string, v scalar) bool {
	if v.kind == kString {
		return ev.containsString(path, v.str)
	}
	for _, e := range ev.arrays[path] {
		if e.equal(v) {
			return true
		}
	}
	return false
}

// RoomID and Sender are the event's room and sender.
func (ev *Event) RoomID() string { return ev.roomID }

// Sender is the event's sender.
func (ev *Event) Sender() string { return ev.sender }
