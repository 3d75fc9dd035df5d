package clientevent

// Bundled aggregations (client-server-api "Aggregations of child events"):
// what the server summarises of an event's children, sent in its
// unsigned["m.relations"]. syncapi/relations computes them; this file
// writes them.

import (
	"strconv"

	"github.com/myelin-chat/myelin/storage"
)

// Relations is an event's bundled aggregations.
type Relations struct {
	// Replace is the most recent valid replacement (m.replace), sent whole.
	Replace *storage.EventRecord
	// Thread summarises the event's thread, when it is a thread root.
	Thread *Thread
	// References are the IDs of the events that m.reference it.
	References []string
}

// Thread is the m.thread aggregation of a thread root.
type Thread struct {
	// Latest is the newest reply, sent whole with its own aggregations.
	Latest                  *storage.EventRecord
	Count                   int
	CurrentUserParticipated bool
}

// maxRelationsDepth: an event of the response carries its aggregations, and
// the latest event of its thread carries its own; deeper events carry none,
// which also ends any loop of relationships.
const maxRelationsDepth = 2

// appendRelations adds ,"m.relations":{...} for ev when it has any.
func (o *Options) appendRelations(b []byte, ev *storage.EventRecord, depth int) []byte {
	rel := o.Relations[ev.NID]
	if rel == nil || depth >= maxRelationsDepth ||
		rel.Replace == nil && rel.Thread == nil && len(rel.References) == 0 {
		return b
	}
	b = append(b, `,"m.relations":{`...)
	sep := false
	comma := func() {
		if sep {
			b = append(b, ',')
		}
		sep = true
	}
	if rel.Replace != nil {
		comma()
		b = append(b, `"m.replace":`...)
		b = append(b, o.client(rel.Replace, maxRelationsDepth)...)
	}
	if t := rel.Thread; t != nil && t.Latest != nil {
		comma()
		b = append(b, `"m.thread":{"latest_event":`...)
		b = append(b, o.client(t.Latest, depth+1)...)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(t.Count), 10)
		b = append(b, `,"current_user_participated":`...)
		b = strconv.AppendBool(b, t.CurrentUserParticipated)
		b = append(b, '}')
	}
	if len(rel.References) > 0 {
		comma()
		b = append(b, `"m.reference":{"chunk":[`...)
		for i, id := range rel.References {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"event_id":`...)
			b = strconv.AppendQuote(b, id)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}
