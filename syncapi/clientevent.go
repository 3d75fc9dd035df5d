package syncapi

// Events as clients see them (client-server-api "Room event format",
// definitions/client_event.yaml): built straight from the stored row and
// JSON, without parsing the event again, since /sync formats thousands.

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// formatOpts says how to format events for one response.
type formatOpts struct {
	// withRoomID includes room_id (it is implied by the room in /sync).
	withRoomID bool
	// federation returns the stored event JSON as is (event_format
	// "federation").
	federation bool
	// fields, when not nil, keeps only these dot-separated paths
	// (event_fields).
	fields [][]string
	// txnIDs maps event NID → the requesting device's transaction ID.
	txnIDs map[int64]string
	// replaced maps a state event's NID → the state event it replaced.
	replaced map[int64]*storage.EventRecord
	// now is the time age is computed against.
	now int64
}

func newFormatOpts(f *Filter, withRoomID bool) formatOpts {
	o := formatOpts{withRoomID: withRoomID, now: time.Now().UnixMilli()}
	if f != nil {
		o.federation = f.EventFormat == "federation"
		if f.EventFields != nil {
			o.fields = make([][]string, 0, len(f.EventFields))
			for _, p := range f.EventFields {
				o.fields = append(o.fields, splitFieldPath(p))
			}
		}
	}
	return o
}

// clientEvent formats ev.
func (o *formatOpts) clientEvent(ev *storage.EventRecord) json.RawMessage {
	if o.federation {
		return o.project(ev.JSON)
	}
	b := make([]byte, 0, len(ev.JSON)+64)
	b = append(b, `{"content":`...)
	content := gjson.GetBytes(ev.JSON, "content")
	if content.Type == gjson.JSON && strings.HasPrefix(content.Raw, "{") {
		b = append(b, content.Raw...)
	} else {
		b = append(b, "{}"...)
	}
	b = append(b, `,"event_id":`...)
	b = strconv.AppendQuote(b, ev.EventID)
	b = append(b, `,"origin_server_ts":`...)
	b = strconv.AppendInt(b, ev.OriginServerTS, 10)
	if o.withRoomID {
		b = append(b, `,"room_id":`...)
		b = strconv.AppendQuote(b, ev.RoomID)
	}
	// Room versions before 11 have redacts at the top level; clients read it
	// there (and, from v11, in content, which is already copied).
	if r := gjson.GetBytes(ev.JSON, "redacts"); r.Type == gjson.String {
		b = append(b, `,"redacts":`...)
		b = append(b, r.Raw...)
	}
	b = append(b, `,"sender":`...)
	b = strconv.AppendQuote(b, ev.Sender)
	if ev.StateKey != nil {
		b = append(b, `,"state_key":`...)
		b = strconv.AppendQuote(b, *ev.StateKey)
	}
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, ev.Type)
	b = append(b, `,"unsigned":{"age":`...)
	b = strconv.AppendInt(b, max(0, o.now-ev.OriginServerTS), 10)
	// The stored unsigned holds what the server added (redacted_because
	// after a redaction); age and transaction_id are ours to set.
	gjson.GetBytes(ev.JSON, "unsigned").ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "age", "transaction_id", "age_ts":
		default:
			b = append(b, ',')
			b = append(b, k.Raw...)
			b = append(b, ':')
			b = append(b, v.Raw...)
		}
		return true
	})
	if prev := o.replaced[ev.NID]; prev != nil {
		b = append(b, `,"replaces_state":`...)
		b = strconv.AppendQuote(b, prev.EventID)
		b = append(b, `,"prev_sender":`...)
		b = strconv.AppendQuote(b, prev.Sender)
		if c := gjson.GetBytes(prev.JSON, "content"); c.IsObject() {
			b = append(b, `,"prev_content":`...)
			b = append(b, c.Raw...)
		}
	}
	if txn, ok := o.txnIDs[ev.NID]; ok {
		b = append(b, `,"transaction_id":`...)
		b = strconv.AppendQuote(b, txn)
	}
	b = append(b, "}}"...)
	return o.project(b)
}

// loadReplaced fills replaced for the state events among evs.
func (o *formatOpts) loadReplaced(ctx context.Context, db *storage.DB, evs []*storage.EventRecord) error {
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
	if o.replaced == nil {
		o.replaced = m
	} else {
		for k, v := range m {
			o.replaced[k] = v
		}
	}
	return nil
}

// clientEvents formats evs.
func (o *formatOpts) clientEvents(evs []*storage.EventRecord) []json.RawMessage {
	out := make([]json.RawMessage, len(evs))
	for i, ev := range evs {
		out[i] = o.clientEvent(ev)
	}
	return out
}

// project applies event_fields.
func (o *formatOpts) project(ev []byte) json.RawMessage {
	if o.fields == nil {
		return ev
	}
	return projectFields(ev, o.fields)
}

// splitFieldPath splits a dot-separated property path, where "\." is a
// literal dot and "\\" a backslash (appendices "Dot-separated property
// paths").
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

// projectFields returns the object ev with only the given paths kept.
func projectFields(ev []byte, paths [][]string) json.RawMessage {
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
