package relations

import (
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Relationship types the server aggregates or checks.
const (
	RelReplace    = pdu.RelReplace
	RelThread     = pdu.RelThread
	RelReference  = pdu.RelReference
	RelAnnotation = pdu.RelAnnotation
)

// RelatesTo is an event's relationship to its parent.
type RelatesTo = pdu.RelatesTo

// Parse returns the relationship of eventJSON (a whole event) that the
// server records (pdu.ParseRelatesTo).
func Parse(eventJSON []byte) (RelatesTo, bool) {
	content := gjson.GetBytes(eventJSON, "content")
	if !content.IsObject() {
		return RelatesTo{}, false
	}
	return pdu.ParseRelatesTo(gjson.GetBytes(eventJSON, "type").Str, []byte(content.Raw))
}
