package pdu

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
)

// The membership handshakes of the Server-Server API (make_join/send_join,
// make_leave/send_leave, make_knock/send_knock, invite): one server builds
// part of an event and another completes or countersigns it.

// AddSignature returns the event with serverName's signature added, made
// with the key keyID over the redacted event as every signature is. The
// event ID does not change: signatures are not part of the reference hash
// (v3+), and v1–v2 IDs are carried in the event.
func (e *Event) AddSignature(serverName, keyID string, key ed25519.PrivateKey) (*Event, error) {
	if err := checkSigningKey(keyID, key); err != nil {
		return nil, err
	}
	red := appendRedacted(nil, topMembers(e.raw), e.f.Type, e.version.Redaction, true)
	sig := ed25519.Sign(key, appendObjectWithout(nil, topMembers(red), "signatures", "unsigned"))
	signed, err := mergeSignature(topMembers(e.raw), serverName, keyID, EncodeBase64(sig))
	if err != nil {
		return nil, err
	}
	return newEvent(signed, topMembers(signed), e.version, e.eventID)
}

// ParseTemplate reads the event template of a make_join, make_leave or
// make_knock answer into a ProtoEvent the joining server can sign. It
// takes the fields the resident server chose (room, sender, state key,
// type, content, prev and auth events, depth) and leaves the rest (the
// timestamp, the event ID of v1–v2 rooms) to the caller; whether the
// template is the one asked for is the caller's check.
func ParseTemplate(raw []byte, ver *RoomVersion) (ProtoEvent, error) {
	var p ProtoEvent
	_, top, err := canonicalize(raw, false)
	if err != nil {
		return p, formatErr("", "%v", err)
	}
	if top == nil {
		return p, formatErr("", "not a JSON object")
	}
	seen := map[string]bool{}
	for _, m := range top {
		key := string(m.key)
		seen[key] = true
		switch key {
		case "type", "sender", "room_id", "state_key", "redacts":
			s, ok := decodeString(m.val)
			if !ok {
				return p, formatErr(key, "not a string")
			}
			switch key {
			case "type":
				p.Type = s
			case "sender":
				p.Sender = s
			case "room_id":
				p.RoomID = s
			case "state_key":
				p.StateKey = &s
			case "redacts":
				p.Redacts = s
			}
		case "content":
			if m.val[0] != '{' {
				return p, formatErr("content", "not an object")
			}
			p.Content = append([]byte(nil), m.val...)
		case "prev_events", "auth_events":
			ids, err := parseRefs(m.val, ver.PrevAuthAsPairs(), key)
			if err != nil {
				return p, err
			}
			if key == "prev_events" {
				p.PrevEvents = ids
			} else {
				p.AuthEvents = ids
			}
		case "depth":
			if p.Depth, err = parseInt(m.val, "depth"); err != nil {
				return p, err
			}
		}
	}
	for _, k := range []string{"type", "sender", "content", "prev_events", "auth_events", "depth"} {
		if !seen[k] {
			return p, formatErr(k, "missing from the template")
		}
	}
	if !seen["room_id"] {
		return p, formatErr("room_id", "missing from the template")
	}
	if len(p.PrevEvents) == 0 {
		return p, formatErr("prev_events", "empty: the template extends nothing")
	}
	if p.Depth < 1 {
		return p, fmt.Errorf("template depth %d: %w", p.Depth, &FormatError{Field: "depth", Reason: "below 1"})
	}
	return p, nil
}

// JSONWithUnsigned returns the event's JSON with unsigned[key] set to
// value (JSON). unsigned is outside the hashes and signatures, and
// ParseEvent drops it (what another server puts there is not trusted), so
// this is for storing what this server adds: the room state carried with
// an invite or a knock.
func (e *Event) JSONWithUnsigned(key string, value json.RawMessage) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.raw, &fields); err != nil {
		return nil, err
	}
	unsigned := map[string]json.RawMessage{}
	if u, ok := fields["unsigned"]; ok {
		if err := json.Unmarshal(u, &unsigned); err != nil {
			return nil, formatErr("unsigned", "not an object")
		}
	}
	unsigned[key] = value
	var err error
	if fields["unsigned"], err = json.Marshal(unsigned); err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}
