package pdu

import "github.com/tidwall/gjson"

// Relationship types (client-server-api "Forming relationships between
// events") the server aggregates or checks.
const (
	RelReplace    = "m.replace"
	RelThread     = "m.thread"
	RelReference  = "m.reference"
	RelAnnotation = "m.annotation"
)

// maxRelIDLength bounds the event ID and rel_type recorded: the spec's
// limit for identifiers.
const maxRelIDLength = 255

// RelatesTo is an event's relationship to its parent.
type RelatesTo struct {
	RelType string
	EventID string
	// Key is m.annotation's key ("" otherwise).
	Key string
}

// ParseRelatesTo returns the relationship in an event's content (of type
// evType), and false when it has none the server records: no
// m.relates_to, no rel_type (a rich reply), or one that breaks the schema
// or a rule the server can check on the child alone (an m.replace without
// m.new_content, an m.annotation without a key). Encrypted edits carry
// m.new_content inside the ciphertext, so it is not required of
// m.room.encrypted events.
func ParseRelatesTo(evType string, content []byte) (RelatesTo, bool) {
	rel := gjson.GetBytes(content, `m\.relates_to`)
	if !rel.IsObject() {
		return RelatesTo{}, false
	}
	relType, eventID := rel.Get("rel_type"), rel.Get("event_id")
	if relType.Type != gjson.String || eventID.Type != gjson.String {
		return RelatesTo{}, false
	}
	r := RelatesTo{RelType: relType.Str, EventID: eventID.Str}
	if r.RelType == "" || len(r.RelType) > maxRelIDLength ||
		len(r.EventID) < 2 || len(r.EventID) > maxRelIDLength || r.EventID[0] != '$' {
		return RelatesTo{}, false
	}
	switch r.RelType {
	case RelReplace:
		if evType != "m.room.encrypted" && !gjson.GetBytes(content, `m\.new_content`).IsObject() {
			return RelatesTo{}, false
		}
	case RelAnnotation:
		key := rel.Get("key")
		if key.Type != gjson.String {
			return RelatesTo{}, false
		}
		r.Key = key.Str
	}
	return r, true
}
