package pdu

import "encoding/json"

// StateKey identifies a piece of room state: an event type and a state key.
type StateKey struct {
	Type     string
	StateKey string
}

// Event is a parsed, validated, immutable room event. Build one with
// ParseEvent (received JSON) or ProtoEvent.Build (a local event). Its
// accessors never fail: everything was checked when it was made.
type Event struct {
	raw     []byte // the full event JSON (unsigned stripped), canonical
	version *RoomVersion
	eventID string
	f       eventFields
}

// eventFields are the top-level keys of a PDU that the server reads.
type eventFields struct {
	RoomID         string                       `json:"room_id"`
	Sender         string                       `json:"sender"`
	Type           string                       `json:"type"`
	StateKey       *string                      `json:"state_key,omitempty"`
	Content        json.RawMessage              `json:"content"`
	PrevEvents     []string                     `json:"-"` // IDs, whichever the wire format
	AuthEvents     []string                     `json:"-"`
	Depth          int64                        `json:"depth"`
	OriginServerTS int64                        `json:"origin_server_ts"`
	Redacts        string                       `json:"redacts,omitempty"` // top-level (v1–v10)
	Origin         string                       `json:"origin,omitempty"`
	Signatures     map[string]map[string]string `json:"signatures,omitempty"`
}

func (e *Event) EventID() string       { return e.eventID }
func (e *Event) RoomID() string        { return e.f.RoomID }
func (e *Event) Sender() string        { return e.f.Sender }
func (e *Event) Type() string          { return e.f.Type }
func (e *Event) Version() *RoomVersion { return e.version }
func (e *Event) Depth() int64          { return e.f.Depth }
func (e *Event) OriginServerTS() int64 { return e.f.OriginServerTS }
func (e *Event) Origin() string        { return e.f.Origin }

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

// Content returns the raw JSON of the event's content object.
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
