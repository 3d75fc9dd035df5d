package relations

import (
	"github.com/tidwall/gjson"
)

// Relationship types the server aggregates or checks.
const (
	RelReplace    = "m.replace"
	RelThread     = "m.thread"
	RelReference  = "m.reference"
	RelAnnotation = "m.annotation"
)

// maxIDLength bounds the event ID and rel_type recorded: the spec's limit
// for identifiers.
const maxIDLength = 255

// RelatesTo is an event's relationship to its parent.
type RelatesTo struct {
	RelType string
	EventID string
	// Key is m.annotation's key ("" otherwise).
	Key string
}

// Parse returns the relationship in the content of eventJSON (a whole
// event), and false when it has none the server records: no
// m.relates_to, no rel_type (a rich reply), or one that breaks the
// schema or a rule the server can check on the child alone (an m.replace
// without m.new_content, an m.annotation without a key). Encrypted edits
// carry m.new_content inside the ciphertext, so it is not required of
// m.room.encrypted events.
func Parse(eventJSON []byte) (RelatesTo, bool) {
	rel := gjson.GetBytes(eventJSON, "content.m\\.relates_to")
	if !rel.IsObject() {
		return RelatesTo{}, false
	}
	relType, eventID := rel.Get("rel_type"), rel.Get("event_id")
	if relType.Type != gjson.String || eventID.Type != gjson.String {
		return RelatesTo{}, false
	}
	r := RelatesTo{RelType: relType.Str, EventID: eventID.Str}
	if r.RelType == "" || len(r.RelType) > maxIDLength ||
		len(r.EventID) < 2 || len(r.EventID) > maxIDLength || r.EventID[0] != '$' {
		return RelatesTo{}, false
	}
	switch r.RelType {
	case RelReplace:
		if gjson.GetBytes(eventJSON, "type").Str != "m.room.encrypted" &&
			!gjson.GetBytes(eventJSON, "content.m\\.new_content").IsObject() {
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
