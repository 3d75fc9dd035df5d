package pdu

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strconv"
	"testing"
)

// Seeds: the appendices' examples and events of every room version.
var fuzzJSONSeeds = []string{
	`{}`, `{"one": 1, "two": "Two"}`, `{"b":"2","a":"1"}`,
	`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
	`{"a": "日本語"}`, `{"本": 2, "日": 1}`, `{"a": "\u65E5"}`, `{"a": null}`, `{"a": -0, "b": 1e10}`,
	`["\ud83d\ude00\u0000\n\/",1.5,-0.0001,1e300,[[[]]]]`,
}

var fuzzEventSeeds = []string{
	`{"room_id":"!x:domain","sender":"@a:domain","origin":"domain","origin_server_ts":1000000,"signatures":{},"hashes":{},"type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3,"unsigned":{"age_ts":1000000}}`,
	`{"content":{"body":"Here is the message content"},"event_id":"$0:domain","origin":"domain","origin_server_ts":1000000,"type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{},"unsigned":{"age_ts":1000000}}`,
}

func addEventSeeds(f *testing.F) {
	for _, s := range fuzzEventSeeds {
		for v := range 12 {
			f.Add([]byte(s), uint8(v))
		}
	}
	key := specKey(f)
	for v, ver := range allVersions(f) {
		b := baseEvent(ver)
		f.Add(marshal(f, b), uint8(v))
		b["type"], b["state_key"] = "m.room.member", "@a:x"
		b["content"] = map[string]any{"membership": "join", "join_authorised_via_users_server": "@b:y",
			"third_party_invite": map[string]any{"signed": map[string]any{"token": "t"}}}
		f.Add(marshal(f, b), uint8(v))
		p := ProtoEvent{Type: "m.room.power_levels", StateKey: strp(""), Sender: "@a:x", Depth: 2,
			Content: []byte(`{"users":{"@a:x":100},"invite":50,"notifications":{"room":50}}`)}
		if !ver.CreateEventIsRoomID {
			p.RoomID = "!r:x"
		} else {
			p.Type = "m.room.create"
			p.Content = []byte(`{"room_version":"12","additional_creators":["@b:y"]}`)
		}
		if ver.EventIDs == EventIDOpaque {
			p.EventID = "$pl:x"
		}
		ev, err := p.Build(ver, "x", "ed25519:1", key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ev.JSON(), uint8(v))
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range fuzzJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		strict, serr := CanonicalJSONStrict(in)
		if err != nil {
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if serr == nil {
				t.Fatalf("strict accepted what lenient refused: %v", err)
			}
			return
		}
		if serr == nil && string(strict) != string(out) {
			t.Fatalf("strict %s != lenient %s", strict, out)
		}
		again, err := CanonicalJSON(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %s -> %s (%v)", out, again, err)
		}
		// Same value as the standard library reads.
		a, err := decodeForCompare(in)
		if err != nil {
			t.Fatalf("encoding/json refuses input we accepted: %v", err)
		}
		b, err := decodeForCompare(out)
		if err != nil {
			t.Fatalf("output is not JSON: %s: %v", out, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("value changed: %s -> %s", in, out)
		}
	})
}

// decodeForCompare decodes JSON with numbers as float64 where they fit
// and as exact decimal text otherwise (huge integers are kept verbatim).
func decodeForCompare(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeNumbers(v), nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		bf, _, err := big.ParseFloat(string(x), 10, 4096, big.ToNearestEven)
		if err != nil {
			return string(x)
		}
		return bf.Text('e', 1200)
	case []any:
		for i := range x {
			x[i] = normalizeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalizeNumbers(x[k])
		}
	}
	return v
}

func FuzzParseEvent(f *testing.F) {
	addEventSeeds(f)
	versions := allVersions(f)
	f.Fuzz(func(t *testing.T, in []byte, v uint8) {
		ver := versions[int(v)%len(versions)]
		ev, err := ParseEvent(in, ver)
		if err != nil {
			var je *JSONError
			var fe *FormatError
			if !errors.As(err, &je) && !errors.As(err, &fe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(ev.JSON()) > MaxEventSize {
			t.Fatalf("event of %d bytes accepted", len(ev.JSON()))
		}
		again, err := ParseEvent(ev.JSON(), ver)
		if err != nil || again.EventID() != ev.EventID() || again.RoomID() != ev.RoomID() {
			t.Fatalf("reparse: %v", err)
		}
		red := ev.Redacted()
		if red.EventID() != ev.EventID() {
			t.Fatalf("redaction changed the event ID")
		}
		viaRedact, err := Redact(ev.JSON(), ver)
		if err != nil || string(viaRedact) != string(red.JSON()) {
			t.Fatalf("Redact and Redacted disagree: %s vs %s (%v)", viaRedact, red.JSON(), err)
		}
		_ = ev.CheckContentHash()
		for _, s := range RequiredSigners(ev) {
			if s == "" {
				t.Fatalf("empty signer in %v", RequiredSigners(ev))
			}
		}
	})
}

func FuzzRedact(f *testing.F) {
	addEventSeeds(f)
	versions := allVersions(f)
	f.Fuzz(func(t *testing.T, in []byte, v uint8) {
		ver := versions[int(v)%len(versions)]
		out, err := Redact(in, ver)
		if err != nil {
			return
		}
		again, err := Redact(out, ver)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %s -> %s (%v)", out, again, err)
		}
		if c, err := CanonicalJSON(out); err != nil || string(c) != string(out) {
			t.Fatalf("output not canonical: %s (%v)", out, err)
		}
		if lookup(out, "content") == nil {
			t.Fatalf("no content in %s", out)
		}
	})
}
