package pdu

import (
	"crypto/ed25519"
	"encoding/json"
	"strconv"
)

// ProtoEvent is a local event before it is hashed and signed: the fields
// the server chooses. Build turns it into an Event.
type ProtoEvent struct {
	Type       string
	StateKey   *string // nil for a message event
	Sender     string
	RoomID     string // "" for the m.room.create event of a v12 room
	Content    json.RawMessage
	PrevEvents []string
	AuthEvents []string
	Depth      int64
	// OriginServerTS is the creation time in milliseconds; the caller
	// supplies it because this package does not read the clock.
	OriginServerTS int64
	// Redacts is the event an m.room.redaction redacts. In v1–v10 it becomes
	// the top-level "redacts"; in v11+ it is put in content.redacts (which
	// may also be set in Content directly).
	Redacts string
	// EventID is required for v1–v2, whose event IDs are "$opaque:server"
	// made by the caller, and must be empty for later versions, whose IDs
	// are the reference hash.
	EventID string
}

// Build makes the event: it writes the PDU in the format of ver, adds the
// content hash, signs the redacted event as origin with the key keyID, and
// computes the event ID. The result has passed ParseEvent.
//
// Build does not add the deprecated top-level "origin" key (it is not in
// the PDU schema of any version).
func (p ProtoEvent) Build(ver *RoomVersion, origin, keyID string, key ed25519.PrivateKey) (*Event, error) {
	if ver == nil {
		return nil, formatErr("", "no room version")
	}
	content := []byte(p.Content)
	if len(content) == 0 {
		content = []byte("{}")
	}
	content, ctop, err := canonicalize(content, ver.StrictCanonicalJSON)
	if err != nil {
		return nil, formatErr("content", "%v", err)
	}
	if ctop == nil {
		return nil, formatErr("content", "not an object")
	}
	if p.Redacts != "" && ver.RedactsInContent {
		if v := lookup(content, "redacts"); v != nil {
			if s, _ := decodeString(v); s != p.Redacts {
				return nil, formatErr("content.redacts", "%s differs from Redacts %q", v, p.Redacts)
			}
		} else {
			with := appendString([]byte(`{"redacts":`), []byte(p.Redacts))
			if len(ctop) > 0 {
				with = append(with, ',')
				with = append(with, content[1:]...)
			} else {
				with = append(with, '}')
			}
			content = with
		}
	}
	if ver.EventIDs == EventIDOpaque && p.EventID == "" {
		return nil, formatErr("event_id", "room version %s needs a caller-made event ID", ver.ID)
	}
	if ver.EventIDs != EventIDOpaque && p.EventID != "" {
		return nil, formatErr("event_id", "room version %s derives event IDs; leave EventID empty", ver.ID)
	}
	isCreate := p.Type == "m.room.create" && p.StateKey != nil && *p.StateKey == ""
	if ver.CreateEventIsRoomID && isCreate && p.RoomID != "" {
		return nil, formatErr("room_id", "must be empty for the m.room.create event in room version %s", ver.ID)
	}

	// Keys in sorted order; hashAndSign re-canonicalizes anyway.
	b := []byte(`{"auth_events":`)
	b = appendRefs(b, p.AuthEvents, ver.PrevAuthAsPairs())
	b = append(b, `,"content":`...)
	b = append(b, content...)
	b = append(b, `,"depth":`...)
	b = strconv.AppendInt(b, p.Depth, 10)
	if p.EventID != "" {
		b = append(b, `,"event_id":`...)
		b = appendString(b, []byte(p.EventID))
	}
	b = append(b, `,"origin_server_ts":`...)
	b = strconv.AppendInt(b, p.OriginServerTS, 10)
	b = append(b, `,"prev_events":`...)
	b = appendRefs(b, p.PrevEvents, ver.PrevAuthAsPairs())
	if p.Redacts != "" && !ver.RedactsInContent {
		b = append(b, `,"redacts":`...)
		b = appendString(b, []byte(p.Redacts))
	}
	if p.RoomID != "" {
		b = append(b, `,"room_id":`...)
		b = appendString(b, []byte(p.RoomID))
	}
	b = append(b, `,"sender":`...)
	b = appendString(b, []byte(p.Sender))
	if p.StateKey != nil {
		b = append(b, `,"state_key":`...)
		b = appendString(b, []byte(*p.StateKey))
	}
	b = append(b, `,"type":`...)
	b = appendString(b, []byte(p.Type))
	b = append(b, '}')

	signed, err := hashAndSign(b, ver, origin, keyID, key)
	if err != nil {
		return nil, err
	}
	return ParseEvent(signed, ver)
}

// appendRefs writes prev_events/auth_events: IDs (v3+) or, for v1–v2,
// [id, {}] pairs. The hashes object is left empty as Synapse does; no
// server checks it.
func appendRefs(b []byte, ids []string, pairs bool) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		if pairs {
			b = append(b, '[')
		}
		b = appendString(b, []byte(id))
		if pairs {
			b = append(b, ",{}]"...)
		}
	}
	return append(b, ']')
}
