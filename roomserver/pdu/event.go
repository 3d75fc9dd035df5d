package pdu

import "encoding/json"

// StateKey identifies a piece of room state: an event type and a state key.
type StateKey struct {
	Type     string
	StateKey string
}

// Event is a parsed, validated, immutable room event. Build one with
// ParseEvent (received JSON) or ProtoEvent.Build (a local event). Its
// accessors never fail: everything was checked when it was made. The
// slices and maps it returns are shared and must not be modified.
type Event struct {
	raw     []byte // the full event JSON (unsigned stripped), canonical
	version *RoomVersion
	eventID string
	f       eventFields
}

// eventFields are the values of the event the server reads, decoded once
// when the event is made.
type eventFields struct {
	RoomID         string
	Sender         string
	Type           string
	StateKey       *string
	Content        json.RawMessage
	PrevEvents     []string // IDs, whichever the wire format
	AuthEvents     []string
	Depth          int64
	OriginServerTS int64
	Redacts        string // of an m.room.redaction: top-level (v1–v10) or content (v11+)
	Origin         string // deprecated top-level key, "" if absent or not a string
	Membership     string // content.membership of an m.room.member
	ContentHash    string // hashes.sha256 as sent (unpadded base64)
	Signatures     map[string]map[string]string
}

func (e *Event) EventID() string       { return e.eventID }
func (e *Event) Sender() string        { return e.f.Sender }
func (e *Event) Type() string          { return e.f.Type }
func (e *Event) Version() *RoomVersion { return e.version }
func (e *Event) Depth() int64          { return e.f.Depth }
func (e *Event) OriginServerTS() int64 { return e.f.OriginServerTS }
func (e *Event) Origin() string        { return e.f.Origin }

// RoomID returns the event's room ID. For the m.room.create event of a
// room version whose room IDs are derived from the create event (v12), it
// is that derived ID, since the event itself carries no room_id.
func (e *Event) RoomID() string { return e.f.RoomID }

// StateKey returns the state key, or nil for a message (non-state) event.
func (e *Event) StateKey() *string { return e.f.StateKey }

// IsState reports whether the event is a state event.
func (e *Event) IsState() bool { return e.f.StateKey != nil }

// StateKeyEquals reports whether the event is a state event with state key s.
func (e *Event) StateKeyEquals(s string) bool { return e.f.StateKey != nil && *e.f.StateKey == s }

// StateTuple is the (type, state_key) pair of a state event; the zero
// StateKey{Type: type} for a message event.
func (e *Event) StateTuple() StateKey {
	if e.f.StateKey == nil {
		return StateKey{Type: e.f.Type}
	}
	return StateKey{Type: e.f.Type, StateKey: *e.f.StateKey}
}

// Content returns the raw JSON of the event's content object (canonical).
func (e *Event) Content() json.RawMessage { return e.f.Content }

// PrevEventIDs returns the IDs of the event's prev_events, in the wire order.
func (e *Event) PrevEventIDs() []string { return e.f.PrevEvents }

// AuthEventIDs returns the IDs of the event's auth_events, in the wire order.
func (e *Event) AuthEventIDs() []string { return e.f.AuthEvents }

// Signatures returns server name → key ID → unpadded base64 signature.
func (e *Event) Signatures() map[string]map[string]string { return e.f.Signatures }

// JSON returns the event as canonical JSON, as it is sent over federation
// (including event_id for v1–v2, excluding unsigned).
func (e *Event) JSON() []byte { return e.raw }

// Redacts returns the ID of the event an m.room.redaction event redacts:
// the top-level "redacts" in v1–v10, content.redacts in v11+. It is "" for
// any other event type, or when the key is absent.
func (e *Event) Redacts() string { return e.f.Redacts }

// Membership returns content.membership of an m.room.member event, or ""
// for other events or when it is absent or not a string.
func (e *Event) Membership() string { return e.f.Membership }

// ContentHash returns hashes.sha256 as the event carries it.
func (e *Event) ContentHash() string { return e.f.ContentHash }
