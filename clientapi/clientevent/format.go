package clientevent

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// Options says how to format the events of one response. The zero value
// formats in client form without room_id.
type Options struct {
	// WithRoomID includes room_id (/sync leaves it out: the room is
	// implied by where the event sits).
	WithRoomID bool
	// Federation returns the stored event JSON as it is (event_format
	// "federation").
	Federation bool
	// Fields, when not nil, keeps only these paths (event_fields; see
	// ParseFields).
	Fields [][]string
	// TxnIDs maps event NID → the requesting device's transaction ID,
	// sent as unsigned.transaction_id (storage.DB.TxnIDs).
	TxnIDs map[int64]string
	// Replaced maps a state event's NID → the state event it replaced,
	// sent as unsigned.prev_content, prev_sender and replaces_state
	// (LoadReplaced).
	Replaced map[int64]*storage.EventRecord
	// Now is the time age is computed against, in milliseconds; 0 means
	// the time of each Format call.
	Now int64
	// Relations maps event NID → the event's bundled aggregations, sent
	// as unsigned["m.relations"] (relations.go).
	Relations map[int64]*Relations
}

// Format formats ev.
func (o *Options) Format(ev *storage.EventRecord) json.RawMessage {
	if o.Federation {
		return o.project(ev.JSON)
	}
	return o.project(o.client(ev, 0))
}

// client formats ev in client form; depth is how deep ev is nested in
// another event's bundled aggregations (0 for an event of the response).
func (o *Options) client(ev *storage.EventRecord, depth int) []byte {
	now := o.Now
	if now == 0 {
		now = time.Now().UnixMilli()
	}
	b := make([]byte, 0, len(ev.JSON)+64)
	b = append(b, `{"content":`...)
	b = append(b, Content(ev)...)
	b = append(b, `,"event_id":`...)
	b = strconv.AppendQuote(b, ev.EventID)
	b = append(b, `,"origin_server_ts":`...)
	b = strconv.AppendInt(b, ev.OriginServerTS, 10)
	if o.WithRoomID {
		b = append(b, `,"room_id":`...)
		b = strconv.AppendQuote(b, ev.RoomID)
	}
	b = appendRedacts(b, ev.Redacts, ev.JSON)
	b = append(b, `,"sender":`...)
	b = strconv.AppendQuote(b, ev.Sender)
	if ev.StateKey != nil {
		b = append(b, `,"state_key":`...)
		b = strconv.AppendQuote(b, *ev.StateKey)
	}
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, ev.Type)
	b = append(b, `,"unsigned":{"age":`...)
	b = strconv.AppendInt(b, max(0, now-ev.OriginServerTS), 10)
	// The stored unsigned holds what the server added (redacted_because
	// after a redaction); age and transaction_id are ours to set.
	gjson.GetBytes(ev.JSON, "unsigned").ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "age", "transaction_id", "age_ts":
			return true
		}
		b = append(b, ',')
		b = append(b, k.Raw...)
		b = append(b, ':')
		if k.Str == "redacted_because" && ev.RedactedBy != "" && v.IsObject() {
			b = appendRedaction(b, v, ev.RedactedBy)
		} else {
			b = append(b, v.Raw...)
		}
		return true
	})
	if prev := o.Replaced[ev.NID]; prev != nil {
		b = append(b, `,"replaces_state":`...)
		b = strconv.AppendQuote(b, prev.EventID)
		b = append(b, `,"prev_sender":`...)
		b = strconv.AppendQuote(b, prev.Sender)
		if c := gjson.GetBytes(prev.JSON, "content"); c.IsObject() {
			b = append(b, `,"prev_content":`...)
			b = append(b, c.Raw...)
		}
	}
	b = o.appendRelations(b, ev, depth)
	if txn, ok := o.TxnIDs[ev.NID]; ok {
		b = append(b, `,"transaction_id":`...)
		b = strconv.AppendQuote(b, txn)
	}
	return append(b, "}}"...)
}

// FormatAll formats evs; the result is never nil (a JSON [] rather than
// null).
func (o *Options) FormatAll(evs []*storage.EventRecord) []json.RawMessage {
	out := make([]json.RawMessage, len(evs))
	for i, ev := range evs {
		out[i] = o.Format(ev)
	}
	return out
}

// Content returns the event's content object ({} when it has none).
func Content(ev *storage.EventRecord) json.RawMessage {
	if c := gjson.GetBytes(ev.JSON, "content"); c.IsObject() {
		return json.RawMessage(c.Raw)
	}
	return json.RawMessage(`{}`)
}

// appendRedacts adds the redacted event of an m.room.redaction at the top
// level in every room version: versions before 11 put it there, and
// clients written for them read it there (Synapse copies it too); from
// version 11 it is in content as well.
func appendRedacts(b []byte, redacts string, eventJSON []byte) []byte {
	if redacts == "" {
		if r := gjson.GetBytes(eventJSON, "redacts"); r.Type == gjson.String {
			redacts = r.Str
		}
	}
	if redacts == "" {
		return b
	}
	b = append(b, `,"redacts":`...)
	return strconv.AppendQuote(b, redacts)
}

// appendRedaction turns the redaction stored in a redacted event's
// unsigned.redacted_because (the federation form, which has no event ID
// from room version 3 on) into the client form clients expect there.
func appendRedaction(b []byte, fed gjson.Result, eventID string) []byte {
	b = append(b, `{"content":`...)
	if c := fed.Get("content"); c.IsObject() {
		b = append(b, c.Raw...)
	} else {
		b = append(b, "{}"...)
	}
	b = append(b, `,"event_id":`...)
	b = strconv.AppendQuote(b, eventID)
	b = append(b, `,"origin_server_ts":`...)
	b = strconv.AppendInt(b, fed.Get("origin_server_ts").Int(), 10)
	b = append(b, `,"room_id":`...)
	b = strconv.AppendQuote(b, fed.Get("room_id").Str)
	redacts := fed.Get("redacts").Str
	if redacts == "" {
		redacts = fed.Get("content.redacts").Str
	}
	b = appendRedacts(b, redacts, nil)
	b = append(b, `,"sender":`...)
	b = strconv.AppendQuote(b, fed.Get("sender").Str)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, fed.Get("type").Str)
	return append(b, `,"unsigned":{}}`...)
}

// LoadReplaced fills Replaced for the state events among evs.
func (o *Options) LoadReplaced(ctx context.Context, db *storage.DB, evs []*storage.EventRecord) error {
	var state []*storage.EventRecord
	for _, ev := range evs {
		if ev.StateKey != nil {
			state = append(state, ev)
		}
	}
	if len(state) == 0 {
		return nil
	}
	m, err := db.SyncReplacedState(ctx, state)
	if err != nil {
		return err
	}
	if o.Replaced == nil {
		o.Replaced = m
	} else {
		for k, v := range m {
			o.Replaced[k] = v
		}
	}
	return nil
}

// project applies Fields.
func (o *Options) project(ev []byte) json.RawMessage {
	if o.Fields == nil {
		return ev
	}
	return Project(ev, o.Fields)
}

// ParseFields splits event_fields' dot-separated property paths, where
// "\." is a literal dot and "\\" a backslash. nil stays nil (keep every
// field).
func ParseFields(paths []string) [][]string {
	if paths == nil {
		return nil
	}
	out := make([][]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, splitFieldPath(p))
	}
	return out
}

func splitFieldPath(p string) []string {
	var (
		parts []string
		cur   strings.Builder
	)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '.' || p[i+1] == '\\'):
			cur.WriteByte(p[i+1])
			i++
		case c == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}

// Project returns the object ev with only the given paths kept.
func Project(ev []byte, paths [][]string) json.RawMessage {
	root := map[string]any{}
	for _, path := range paths {
		v := lookupPath(gjson.ParseBytes(ev), path)
		if !v.Exists() {
			continue
		}
		node := root
		covered := false
		for _, k := range path[:len(path)-1] {
			switch next := node[k].(type) {
			case map[string]any:
				node = next
			case json.RawMessage:
				covered = true // a shorter path already keeps the whole value
			default:
				m := map[string]any{}
				node[k] = m
				node = m
			}
			if covered {
				break
			}
		}
		if !covered {
			node[path[len(path)-1]] = json.RawMessage(v.Raw)
		}
	}
	out, err := json.Marshal(root)
	if err != nil {
		return ev
	}
	return out
}

// lookupPath walks an object by exact keys (gjson's own path syntax would
// give meaning to characters such as '*' and '#' in keys).
func lookupPath(v gjson.Result, path []string) gjson.Result {
	for _, k := range path {
		if !v.IsObject() {
			return gjson.Result{}
		}
		var found gjson.Result
		v.ForEach(func(key, val gjson.Result) bool {
			if key.Str == k {
				found = val
				return false
			}
			return true
		})
		if !found.Exists() {
			return found
		}
		v = found
	}
	return v
}
