package clientevent_test

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/storage"
)

func TestFormat(t *testing.T) {
	sk := ""
	// A message redacted by a v11 redaction: the stored JSON is redacted,
	// with the redaction in federation form (no event_id) under unsigned.
	redacted := &storage.EventRecord{
		NID: 7, EventID: "$m", RoomID: "!r:x", Type: "m.room.message", Sender: "@a:x", OriginServerTS: 1000,
		RedactedBy: "$red",
		JSON: []byte(`{"content":{},"type":"m.room.message","sender":"@a:x","origin_server_ts":1000,"room_id":"!r:x",` +
			`"unsigned":{"age_ts":5,"age":3,"redacted_because":{"type":"m.room.redaction","sender":"@b:x","origin_server_ts":2000,` +
			`"room_id":"!r:x","content":{"redacts":"$m","reason":"spam"},"signatures":{}}}}`),
	}
	o := clientevent.Options{WithRoomID: true, Now: 1500, TxnIDs: map[int64]string{7: "txn1"}}
	ev := gjson.ParseBytes(o.Format(redacted))
	for path, want := range map[string]string{
		"event_id": "$m", "room_id": "!r:x", "sender": "@a:x", "type": "m.room.message",
		"unsigned.age": "500", "unsigned.transaction_id": "txn1",
		"unsigned.redacted_because.event_id": "$red", "unsigned.redacted_because.redacts": "$m",
		"unsigned.redacted_because.content.reason": "spam", "unsigned.redacted_because.sender": "@b:x",
		"content": "{}",
	} {
		if got := ev.Get(path).String(); got != want {
			t.Errorf("%s = %q, want %q in %s", path, got, want, ev.Raw)
		}
	}
	if ev.Get("unsigned.age_ts").Exists() || ev.Get("unsigned.redacted_because.signatures").Exists() || ev.Get("state_key").Exists() {
		t.Errorf("unexpected fields in %s", ev.Raw)
	}
	if !json.Valid(o.Format(redacted)) {
		t.Error("invalid JSON")
	}

	// A v11 redaction: redacts copied to the top level. Without
	// WithRoomID, no room_id.
	red := &storage.EventRecord{NID: 8, EventID: "$red", RoomID: "!r:x", Type: "m.room.redaction", Sender: "@b:x", Redacts: "$m",
		JSON: []byte(`{"content":{"redacts":"$m"},"type":"m.room.redaction"}`)}
	ev = gjson.ParseBytes((&clientevent.Options{}).Format(red))
	if ev.Get("redacts").Str != "$m" || ev.Get("room_id").Exists() || ev.Get("content.redacts").Str != "$m" {
		t.Errorf("redaction %s", ev.Raw)
	}

	// A state change: prev_content, prev_sender and replaces_state.
	prev := &storage.EventRecord{NID: 1, EventID: "$t1", Sender: "@a:x", JSON: []byte(`{"content":{"topic":"old"}}`)}
	topic := &storage.EventRecord{NID: 2, EventID: "$t2", Type: "m.room.topic", StateKey: &sk, Sender: "@b:x",
		JSON: []byte(`{"content":{"topic":"new"},"state_key":""}`)}
	o = clientevent.Options{Replaced: map[int64]*storage.EventRecord{2: prev}}
	ev = gjson.ParseBytes(o.Format(topic))
	if ev.Get("unsigned.prev_content.topic").Str != "old" || ev.Get("unsigned.prev_sender").Str != "@a:x" ||
		ev.Get("unsigned.replaces_state").Str != "$t1" || ev.Get("state_key").Str != "" || !ev.Get("state_key").Exists() {
		t.Errorf("state change %s", ev.Raw)
	}
	if all := (&clientevent.Options{}).FormatAll(nil); all == nil || len(all) != 0 {
		t.Errorf("FormatAll(nil) = %#v", all)
	}

	// Federation format: the stored JSON, projected by event_fields.
	o = clientevent.Options{Federation: true, Fields: clientevent.ParseFields([]string{"content.topic"})}
	if got := string(o.Format(topic)); got != `{"content":{"topic":"new"}}` {
		t.Errorf("federation with fields: %s", got)
	}
	if got := string(clientevent.Content(&storage.EventRecord{JSON: []byte(`{"content":5}`)})); got != "{}" {
		t.Errorf("content of a bad event: %s", got)
	}
}

func TestEventFields(t *testing.T) {
	ev := []byte(`{"content":{"body":"hi","a.b":{"c":1},"msgtype":"m.text"},"type":"m.room.message","sender":"@a:x","unsigned":{"age":1}}`)
	for _, c := range []struct {
		fields []string
		want   string
	}{
		{[]string{"type", "content.body"}, `{"content":{"body":"hi"},"type":"m.room.message"}`},
		{[]string{"content", "content.body"}, `{"content":{"a.b":{"c":1},"body":"hi","msgtype":"m.text"}}`},
		{[]string{"content.body", "content"}, `{"content":{"a.b":{"c":1},"body":"hi","msgtype":"m.text"}}`},
		{[]string{`content.a\.b.c`}, `{"content":{"a.b":{"c":1}}}`},
		{[]string{"missing", "content.missing.deeper"}, `{}`},
	} {
		var got, want any
		_ = json.Unmarshal(clientevent.Project(ev, clientevent.ParseFields(c.fields)), &got)
		_ = json.Unmarshal([]byte(c.want), &want)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("event_fields %v = %s, want %s", c.fields, gb, wb)
		}
	}
	if clientevent.ParseFields(nil) != nil {
		t.Error("ParseFields(nil) is not nil")
	}
}
