package pdu

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// The event format of each room version (server-server-api "PDUs",
// rooms/vN "Event format", data/api/server-server/definitions/pdu_v*.yaml)
// and the size limits of client-server-api "Size limits".

// MaxEventSize is the largest an event may be, in bytes of canonical JSON.
// It is measured without "unsigned", which is not part of the signed event
// and which this package drops.
const MaxEventSize = 65536

// MaxIDSize is the limit in bytes on sender, room_id, state_key, type and
// event_id.
const MaxIDSize = 255

// ErrTooLarge is what a *FormatError for a size limit unwraps to: the
// whole event over MaxEventSize, or an identifier (sender, room_id,
// event_id, type, state_key) over MaxIDSize. The Client-Server API answers
// those 413 M_TOO_LARGE rather than 400 M_BAD_JSON; test with errors.Is.
var ErrTooLarge = errors.New("over a size limit")

// FormatError says which part of an event is not in the format its room
// version requires.
type FormatError struct {
	Field  string // the JSON key, dotted for nested keys; "" for the whole event
	Reason string
	// TooLarge is set when the event or the field is over its size limit
	// (client-server-api "Size limits"); the error then unwraps to
	// ErrTooLarge.
	TooLarge bool
}

func (e *FormatError) Error() string {
	if e.Field == "" {
		return "invalid event: " + e.Reason
	}
	return "invalid event: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrTooLarge for a size error, nil otherwise.
func (e *FormatError) Unwrap() error {
	if e.TooLarge {
		return ErrTooLarge
	}
	return nil
}

func formatErr(field, format string, args ...any) error {
	return &FormatError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// sizeErr is the FormatError for a value of n bytes over limit.
func sizeErr(field string, n, limit int) error {
	reason := fmt.Sprintf("%d bytes, more than %d", n, limit)
	if field == "" {
		reason = fmt.Sprintf("%d bytes of canonical JSON, more than %d", n, limit)
	}
	return &FormatError{Field: field, Reason: reason, TooLarge: true}
}

// ParseEvent checks that raw is an event in the format of room version ver
// and returns it with its event ID (carried in v1–v2, the reference hash in
// v3+). It does not check hashes or signatures: see CheckContentHash,
// VerifySignature and RequiredSigners. "unsigned" is dropped.
//
// In v6+ the JSON must be strict canonical JSON (integers in range, no
// floats); in every version duplicate keys, invalid UTF-8 and nesting
// deeper than MaxNestingDepth are refused.
func ParseEvent(raw []byte, ver *RoomVersion) (*Event, error) {
	if ver == nil {
		return nil, formatErr("", "no room version")
	}
	canon, top, err := canonicalizeDropping(raw, ver.StrictCanonicalJSON, "unsigned")
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, formatErr("", "not a JSON object")
	}
	if len(canon) > MaxEventSize {
		return nil, sizeErr("", len(canon), MaxEventSize)
	}
	return newEvent(canon, top, ver, "")
}

// newEvent decodes and validates the canonical event raw (whose top-level
// members are top). If eventID is "" it is taken from the event (v1–v2) or
// computed (v3+).
func newEvent(raw []byte, top []member, ver *RoomVersion, eventID string) (*Event, error) {
	e := &Event{raw: raw, version: ver}
	f := &e.f
	var have struct{ sender, ts, typ, content, depth, hashes, sigs, prev, auth, room, id bool }
	var topRedacts []byte
	var err error
	for _, m := range top {
		k, v := m.key, m.val
		switch string(k) {
		case "auth_events":
			f.AuthEvents, err = parseRefs(v, ver.PrevAuthAsPairs(), "auth_events")
			have.auth = true
		case "prev_events":
			f.PrevEvents, err = parseRefs(v, ver.PrevAuthAsPairs(), "prev_events")
			have.prev = true
		case "content":
			if v[0] != '{' {
				return nil, formatErr("content", "not an object")
			}
			f.Content = v
			have.content = true
		case "depth":
			f.Depth, err = parseInt(v, "depth")
			if err == nil && f.Depth < 0 {
				err = formatErr("depth", "negative")
			}
			have.depth = true
		case "event_id":
			if ver.EventIDs == EventIDOpaque {
				eventIDField, e2 := parseID(v, "event_id", '$', true)
				err = e2
				if eventID == "" {
					eventID = eventIDField
				}
				have.id = true
			}
		case "hashes":
			f.ContentHash, err = parseHashes(v)
			have.hashes = true
		case "origin":
			f.Origin, _ = decodeString(v) // deprecated and unchecked by anyone
		case "origin_server_ts":
			f.OriginServerTS, err = parseInt(v, "origin_server_ts")
			have.ts = true
		case "redacts":
			if !ver.RedactsInContent {
				if _, ok := decodeString(v); !ok {
					return nil, formatErr("redacts", "not a string")
				}
				topRedacts = v
			}
		case "room_id":
			f.RoomID, err = parseID(v, "room_id", '!', false)
			have.room = true
		case "sender":
			f.Sender, err = parseID(v, "sender", '@', true)
			have.sender = true
		case "signatures":
			f.Signatures, err = parseSignatures(v)
			have.sigs = true
		case "state_key":
			s, ok := decodeString(v)
			if !ok {
				return nil, formatErr("state_key", "not a string")
			}
			if len(s) > MaxIDSize {
				return nil, sizeErr("state_key", len(s), MaxIDSize)
			}
			f.StateKey = &s
		case "type":
			s, ok := decodeString(v)
			if !ok {
				return nil, formatErr("type", "not a string")
			}
			if len(s) > MaxIDSize {
				return nil, sizeErr("type", len(s), MaxIDSize)
			}
			f.Type = s
			have.typ = true
		}
		if err != nil {
			return nil, err
		}
	}
	for _, r := range []struct {
		ok   bool
		name string
	}{
		{have.auth, "auth_events"}, {have.content, "content"}, {have.depth, "depth"},
		{have.hashes, "hashes"}, {have.ts, "origin_server_ts"}, {have.prev, "prev_events"},
		{have.sender, "sender"}, {have.sigs, "signatures"}, {have.typ, "type"},
		{have.id || ver.EventIDs != EventIDOpaque, "event_id"},
	} {
		if !r.ok {
			return nil, formatErr(r.name, "missing")
		}
	}

	// v12: the create event has no room_id; its room ID is derived from its
	// event ID. Synapse treats only the m.room.create with state key "" so.
	isCreate := f.Type == "m.room.create" && f.StateKey != nil && *f.StateKey == ""
	roomFromID := ver.CreateEventIsRoomID && isCreate
	switch {
	case roomFromID && have.room:
		return nil, formatErr("room_id", "must be absent from the m.room.create event in room version %s", ver.ID)
	case !roomFromID && !have.room:
		return nil, formatErr("room_id", "missing")
	}

	switch f.Type {
	case "m.room.member":
		if v := lookup(f.Content, "membership"); v != nil {
			f.Membership, _ = decodeString(v)
		}
		if ver.RestrictedJoins && f.Membership == "join" {
			// The authorising server must sign the join (RequiredSigners).
			if v := lookup(f.Content, "join_authorised_via_users_server"); v != nil {
				if _, err := parseID(v, "content.join_authorised_via_users_server", '@', true); err != nil {
					return nil, err
				}
			}
		}
	case "m.room.redaction":
		if ver.RedactsInContent {
			if v := lookup(f.Content, "redacts"); v != nil {
				f.Redacts, _ = decodeString(v)
			}
		} else if topRedacts != nil {
			f.Redacts, _ = decodeString(topRedacts)
		}
	}

	if eventID == "" {
		var buf [4096]byte // the redacted event is small; keep it off the heap
		sum := sha256.Sum256(appendRedacted(buf[:0], top, f.Type, ver.Redaction, false))
		enc := base64.RawURLEncoding
		if ver.EventIDs == EventIDHashStd {
			enc = base64.RawStdEncoding
		}
		var id [1 + 43]byte
		id[0] = '$'
		enc.Encode(id[1:], sum[:])
		eventID = string(id[:])
	}
	e.eventID = eventID
	if roomFromID {
		f.RoomID = RoomIDFromCreateEventID(eventID)
	}
	return e, nil
}

// parseID decodes a string identifier with the given sigil, no longer than
// MaxIDSize bytes, and (if needDomain) with a ":domain" part.
func parseID(v []byte, field string, sigil byte, needDomain bool) (string, error) {
	s, ok := decodeString(v)
	if !ok {
		return "", formatErr(field, "not a string")
	}
	if len(s) > MaxIDSize {
		return "", sizeErr(field, len(s), MaxIDSize)
	}
	if len(s) == 0 || s[0] != sigil {
		return "", formatErr(field, "%q does not start with %q", s, sigil)
	}
	if needDomain && DomainOf(s) == "" {
		return "", formatErr(field, "%q has no server name", s)
	}
	return s, nil
}

func parseInt(v []byte, field string) (int64, error) {
	n, ok := decodeInt(v)
	if !ok {
		if v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
			return 0, formatErr(field, "%s is not an integer in the 64-bit range", v)
		}
		return 0, formatErr(field, "not an integer")
	}
	return n, nil
}

// parseRefs decodes prev_events or auth_events: plain event IDs (v3+) or
// [event_id, {hashes}] pairs (v1–v2).
func parseRefs(v []byte, pairs bool, field string) ([]string, error) {
	if v[0] != '[' {
		return nil, formatErr(field, "not an array")
	}
	n := 0
	for range arrayElems(v) {
		n++
	}
	ids := make([]string, 0, n)
	for el := range arrayElems(v) {
		at := func(suffix string) string { return fmt.Sprintf("%s[%d]%s", field, len(ids), suffix) }
		if !pairs {
			id, ok := decodeString(el)
			if !ok {
				return nil, formatErr(at(""), "not a string event ID")
			}
			ids = append(ids, id)
			continue
		}
		if el[0] != '[' {
			return nil, formatErr(at(""), "not an [event_id, hashes] pair")
		}
		var parts [3][]byte
		n := 0
		for p := range arrayElems(el) {
			if n < len(parts) {
				parts[n] = p
			}
			n++
		}
		if n != 2 {
			return nil, formatErr(at(""), "has %d elements, want [event_id, hashes]", n)
		}
		id, ok := decodeString(parts[0])
		if !ok {
			return nil, formatErr(at("[0]"), "not a string event ID")
		}
		if parts[1][0] != '{' {
			return nil, formatErr(at("[1]"), "not a hashes object")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// parseHashes checks the hashes object and returns its sha256 value. A
// hash that is not valid base64 makes the event unusable (Synapse drops
// it); a well-formed hash that does not match is for CheckContentHash.
func parseHashes(v []byte) (string, error) {
	if v[0] != '{' {
		return "", formatErr("hashes", "not an object")
	}
	h := lookup(v, "sha256")
	if h == nil {
		return "", formatErr("hashes.sha256", "missing")
	}
	s, ok := decodeString(h)
	if !ok {
		return "", formatErr("hashes.sha256", "not a string")
	}
	if _, err := DecodeBase64(s); err != nil {
		return "", formatErr("hashes.sha256", "%v", err)
	}
	return s, nil
}

// parseSignatures decodes server name → key ID → signature.
func parseSignatures(v []byte) (map[string]map[string]string, error) {
	if v[0] != '{' {
		return nil, formatErr("signatures", "not an object")
	}
	out := map[string]map[string]string{}
	for k, byServer := range objectMembers(v) {
		server := decodeKey(k)
		if byServer[0] != '{' {
			return nil, formatErr("signatures."+server, "not an object")
		}
		keys := map[string]string{}
		for kk, sig := range objectMembers(byServer) {
			keyID := decodeKey(kk)
			s, ok := decodeString(sig)
			if !ok {
				return nil, formatErr("signatures."+server+"."+keyID, "not a string")
			}
			keys[keyID] = s
		}
		out[server] = keys
	}
	return out, nil
}

// DomainOf returns the server name of an identifier of the form
// "&localpart:domain" (everything after the first ':'), or "" if it has
// none. Localparts never contain ':', server names may (a port, IPv6).
func DomainOf(id string) string {
	_, domain, ok := strings.Cut(id, ":")
	if !ok {
		return ""
	}
	return domain
}

// RoomIDFromCreateEventID returns the room ID of a room whose ID is derived
// from its create event (v12): the event ID with "!" instead of "$". It
// returns "" if eventID does not start with "$".
func RoomIDFromCreateEventID(eventID string) string {
	if !strings.HasPrefix(eventID, "$") {
		return ""
	}
	return "!" + eventID[1:]
}

// Limits on the number of references an event makes (the PDU schema:
// "Must contain less than or equal to 20 events" / "10 events").
const (
	MaxPrevEvents = 20
	MaxAuthEvents = 10
)

// CheckReferenceLimits reports whether the event has more prev_events or
// auth_events than the PDU schema allows. ParseEvent does not apply it:
// Synapse checks these limits only on events pushed to it or backfilled
// (its _sanity_check_event), not on events in state or auth chains it
// receives while joining, and old rooms contain events over the limits.
// The federation receive path should call it for /send and backfill.
func (e *Event) CheckReferenceLimits() error {
	if n := len(e.f.PrevEvents); n > MaxPrevEvents {
		return formatErr("prev_events", "%d entries, more than %d", n, MaxPrevEvents)
	}
	if n := len(e.f.AuthEvents); n > MaxAuthEvents {
		return formatErr("auth_events", "%d entries, more than %d", n, MaxAuthEvents)
	}
	return nil
}
