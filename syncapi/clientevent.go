package syncapi

// Events as clients see them: the formatting is clientapi/clientevent's,
// shared with clientapi; this file turns a filter's event_format and
// event_fields into its options.

import (
	"time"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
)

// newFormatOpts returns the options for formatting the events of one
// response under filter f (nil for none). Every event of the response gets
// its age against the same time.
func newFormatOpts(f *Filter, withRoomID bool) clientevent.Options {
	o := clientevent.Options{WithRoomID: withRoomID, Now: time.Now().UnixMilli()}
	if f != nil {
		o.Federation = f.EventFormat == "federation"
		o.Fields = clientevent.ParseFields(f.EventFields)
	}
	return o
}
