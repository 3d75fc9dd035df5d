package pdu

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const fakeHash = "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"

// baseEvent is a well-formed PDU for ver (hashes and signatures are not
// valid; ParseEvent does not check them).
func baseEvent(ver *RoomVersion) map[string]any {
	ev := map[string]any{
		"room_id":          "!r:x",
		"sender":           "@a:x",
		"type":             "m.room.message",
		"content":          map[string]any{"body": "hi"},
		"depth":            5,
		"origin_server_ts": 1000,
		"hashes":           map[string]any{"sha256": fakeHash},
		"signatures":       map[string]any{"x": map[string]any{"ed25519:1": "sig"}},
		"prev_events":      []any{"$p"},
		"auth_events":      []any{"$a1", "$a2"},
		"unsigned":         map[string]any{"age": 10},
	}
	if ver.PrevAuthAsPairs() {
		ev["event_id"] = "$e:x"
		ev["prev_events"] = []any{[]any{"$p:x", map[string]any{"sha256": fakeHash}}}
		ev["auth_events"] = []any{[]any{"$a1:x", map[string]any{}}, []any{"$a2:x", map[string]any{}}}
	}
	return ev
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func allVersions(t testing.TB) []*RoomVersion {
	var out []*RoomVersion
	for _, id := range KnownRoomVersions() {
		v, err := GetRoomVersion(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestParseEventValid(t *testing.T) {
	for _, ver := range allVersions(t) {
		ev, err := ParseEvent(marshal(t, baseEvent(ver)), ver)
		if err != nil {
			t.Fatalf("v%s: %v", ver.ID, err)
		}
		if ev.Sender() != "@a:x" || ev.RoomID() != "!r:x" || ev.Type() != "m.room.message" ||
			ev.Depth() != 5 || ev.OriginServerTS() != 1000 || ev.IsState() || ev.Version() != ver ||
			string(ev.Content()) != `{"body":"hi"}` || ev.ContentHash() != fakeHash ||
			ev.Signatures()["x"]["ed25519:1"] != "sig" || len(ev.AuthEventIDs()) != 2 || len(ev.PrevEventIDs()) != 1 {
			t.Errorf("v%s: fields wrong: %+v", ver.ID, ev.f)
		}
		if ev.StateTuple() != (StateKey{Type: "m.room.message"}) || ev.StateKey() != nil || ev.StateKeyEquals("") {
			t.Errorf("v%s: state accessors wrong for a message", ver.ID)
		}
		if strings.Contains(string(ev.JSON()), "unsigned") {
			t.Errorf("v%s: unsigned kept: %s", ver.ID, ev.JSON())
		}
		if ver.PrevAuthAsPairs() {
			if ev.EventID() != "$e:x" || ev.AuthEventIDs()[1] != "$a2:x" || ev.PrevEventIDs()[0] != "$p:x" {
				t.Errorf("v%s: IDs %s %v %v", ver.ID, ev.EventID(), ev.AuthEventIDs(), ev.PrevEventIDs())
			}
		} else if ev.AuthEventIDs()[1] != "$a2" || ev.PrevEventIDs()[0] != "$p" {
			t.Errorf("v%s: IDs %v %v", ver.ID, ev.AuthEventIDs(), ev.PrevEventIDs())
		}
	}
}

// TestParseEventIDs checks the event ID of each version against a value
// computed by hand from the reference hash definition.
func TestParseEventIDs(t *testing.T) {
	v3, _ := GetRoomVersion("3")
	v4, _ := GetRoomVersion("4")
	ev := baseEvent(v3)
	e3, err := ParseEvent(marshal(t, ev), v3)
	if err != nil {
		t.Fatal(err)
	}
	e4, err := ParseEvent(marshal(t, ev), v4)
	if err != nil {
		t.Fatal(err)
	}
	// The reference hash covers the redacted event without signatures: a
	// message keeps no content, so the body and the signature don't matter.
	ev["content"] = map[string]any{"body": "something else"}
	ev["signatures"] = map[string]any{}
	ev["unsigned"] = "anything"
	ev["extra"] = true
	e3b, err := ParseEvent(marshal(t, ev), v3)
	if err != nil {
		t.Fatal(err)
	}
	if e3.EventID() != e3b.EventID() {
		t.Errorf("reference hash depends on non-essential keys: %s vs %s", e3.EventID(), e3b.EventID())
	}
	if e3.EventID()[1:] == e4.EventID()[1:] {
		t.Errorf("v3 and v4 IDs should differ in alphabet or be identical by chance: %s", e3.EventID())
	}
	std, _ := DecodeBase64(e3.EventID()[1:])
	url, _ := DecodeBase64(e4.EventID()[1:])
	if string(std) != string(url) || len(std) != 32 {
		t.Errorf("v3 %s and v4 %s encode different hashes", e3.EventID(), e4.EventID())
	}
	// A different depth is an essential change.
	ev["depth"] = 6
	e3c, _ := ParseEvent(marshal(t, ev), v3)
	if e3c.EventID() == e3.EventID() {
		t.Error("depth change did not change the event ID")
	}
}

func TestParseEventFormatErrors(t *testing.T) {
	long := "@" + strings.Repeat("a", MaxIDSize-2) + ":x" // 256 bytes
	type mut func(ev map[string]any)
	set := func(k string, v any) mut { return func(ev map[string]any) { ev[k] = v } }
	del := func(k string) mut { return func(ev map[string]any) { delete(ev, k) } }
	cases := []struct {
		name    string
		vers    string // versions the case applies to, "" for all
		change  mut
		field   string
		reason  string
		jsonErr bool
		large   bool // a size limit: the error is ErrTooLarge too
	}{
		{name: "sender missing", change: del("sender"), field: "sender", reason: "missing"},
		{name: "type missing", change: del("type"), field: "type", reason: "missing"},
		{name: "content missing", change: del("content"), field: "content", reason: "missing"},
		{name: "depth missing", change: del("depth"), field: "depth", reason: "missing"},
		{name: "hashes missing", change: del("hashes"), field: "hashes", reason: "missing"},
		{name: "signatures missing", change: del("signatures"), field: "signatures", reason: "missing"},
		{name: "origin_server_ts missing", change: del("origin_server_ts"), field: "origin_server_ts", reason: "missing"},
		{name: "prev_events missing", change: del("prev_events"), field: "prev_events", reason: "missing"},
		{name: "auth_events missing", change: del("auth_events"), field: "auth_events", reason: "missing"},
		{name: "room_id missing", change: del("room_id"), field: "room_id", reason: "missing"},
		{name: "event_id missing", vers: "1 2", change: del("event_id"), field: "event_id", reason: "missing"},
		{name: "event_id not a string", vers: "1 2", change: set("event_id", 5), field: "event_id", reason: "not a string"},
		{name: "event_id without domain", vers: "1 2", change: set("event_id", "$abc"), field: "event_id", reason: "no server name"},
		{name: "event_id wrong sigil", vers: "1 2", change: set("event_id", "!abc:x"), field: "event_id", reason: `does not start with '$'`},
		{name: "event_id too long", vers: "1 2", change: set("event_id", "$"+strings.Repeat("e", 253)+":x"), field: "event_id", reason: "256 bytes", large: true},
		{name: "sender not a string", change: set("sender", 1), field: "sender", reason: "not a string"},
		{name: "sender wrong sigil", change: set("sender", "a:x"), field: "sender", reason: "does not start"},
		{name: "sender empty", change: set("sender", ""), field: "sender", reason: "does not start"},
		{name: "sender without domain", change: set("sender", "@a"), field: "sender", reason: "no server name"},
		{name: "sender with empty domain", change: set("sender", "@a:"), field: "sender", reason: "no server name"},
		{name: "sender too long", change: set("sender", long), field: "sender", reason: "256 bytes, more than 255", large: true},
		{name: "room_id not a string", change: set("room_id", []any{}), field: "room_id", reason: "not a string"},
		{name: "room_id wrong sigil", change: set("room_id", "#r:x"), field: "room_id", reason: "does not start"},
		{name: "room_id too long", change: set("room_id", "!"+strings.Repeat("r", 255)), field: "room_id", reason: "256 bytes", large: true},
		{name: "type not a string", change: set("type", true), field: "type", reason: "not a string"},
		{name: "type too long", change: set("type", strings.Repeat("t", 256)), field: "type", reason: "256 bytes", large: true},
		{name: "state_key not a string", change: set("state_key", nil), field: "state_key", reason: "not a string"},
		{name: "state_key too long", change: set("state_key", strings.Repeat("s", 256)), field: "state_key", reason: "256 bytes", large: true},
		{name: "content not an object", change: set("content", "x"), field: "content", reason: "not an object"},
		{name: "depth not an integer", change: set("depth", "5"), field: "depth", reason: "not an integer"},
		{name: "depth negative", change: set("depth", -1), field: "depth", reason: "negative"},
		{name: "depth beyond int64", vers: "1 2 3 4 5", change: set("depth", json.Number("9223372036854775808")), field: "depth", reason: "64-bit range"},
		{name: "depth beyond 2^53 in v6+", vers: "6 7 8 9 10 11 12", change: set("depth", json.Number("9007199254740992")), jsonErr: true, reason: "outside"},
		{name: "depth float in v1-5", vers: "1 2 3 4 5", change: set("depth", 1.5), field: "depth", reason: "not an integer"},
		{name: "depth float in v6+", vers: "6 7 8 9 10 11 12", change: set("depth", 1.5), jsonErr: true, reason: "not an integer"},
		{name: "float in unsigned in v6+", vers: "6 7 8 9 10 11 12", change: set("unsigned", map[string]any{"age": 1.5}), jsonErr: true, reason: "not an integer"},
		{name: "origin_server_ts not an integer", change: set("origin_server_ts", map[string]any{}), field: "origin_server_ts", reason: "not an integer"},
		{name: "hashes not an object", change: set("hashes", "h"), field: "hashes", reason: "not an object"},
		{name: "hashes without sha256", change: set("hashes", map[string]any{"sha512": "x"}), field: "hashes.sha256", reason: "missing"},
		{name: "sha256 not a string", change: set("hashes", map[string]any{"sha256": 1}), field: "hashes.sha256", reason: "not a string"},
		{name: "sha256 not base64", change: set("hashes", map[string]any{"sha256": "!!!"}), field: "hashes.sha256", reason: "invalid base64"},
		{name: "signatures not an object", change: set("signatures", []any{}), field: "signatures", reason: "not an object"},
		{name: "server signatures not an object", change: set("signatures", map[string]any{"x": "s"}), field: "signatures.x", reason: "not an object"},
		{name: "signature not a string", change: set("signatures", map[string]any{"x": map[string]any{"ed25519:1": 1}}), field: "signatures.x.ed25519:1", reason: "not a string"},
		{name: "prev_events not an array", change: set("prev_events", "$p"), field: "prev_events", reason: "not an array"},
		{name: "auth_events not an array", change: set("auth_events", map[string]any{}), field: "auth_events", reason: "not an array"},
		{name: "prev_events entry not a string", vers: "3 4 5 6 7 8 9 10 11 12", change: set("prev_events", []any{"$a", 5}), field: "prev_events[1]", reason: "not a string"},
		{name: "prev_events pair given in v3+", vers: "3 4 5 6 7 8 9 10 11 12", change: set("prev_events", []any{[]any{"$p", map[string]any{}}}), field: "prev_events[0]", reason: "not a string"},
		{name: "prev_events string given in v1-2", vers: "1 2", change: set("prev_events", []any{"$p:x"}), field: "prev_events[0]", reason: "not an [event_id, hashes] pair"},
		{name: "auth_events pair too short", vers: "1 2", change: set("auth_events", []any{[]any{"$p:x"}}), field: "auth_events[0]", reason: "has 1 elements"},
		{name: "auth_events pair too long", vers: "1 2", change: set("auth_events", []any{[]any{"$p:x", map[string]any{}, 1, 2}}), field: "auth_events[0]", reason: "has 4 elements"},
		{name: "pair ID not a string", vers: "1 2", change: set("auth_events", []any{[]any{1, map[string]any{}}}), field: "auth_events[0][0]", reason: "not a string"},
		{name: "pair hashes not an object", vers: "1 2", change: set("auth_events", []any{[]any{"$a:x", "h"}}), field: "auth_events[0][1]", reason: "not a hashes object"},
		{name: "top-level redacts not a string", vers: "1 2 3 4 5 6 7 8 9 10", change: set("redacts", 1), field: "redacts", reason: "not a string"},
		{name: "event too large", change: set("content", map[string]any{"body": strings.Repeat("b", MaxEventSize)}), field: "", reason: "more than 65536", large: true},
	}
	for _, tc := range cases {
		for _, ver := range allVersions(t) {
			if tc.vers != "" && !strings.Contains(" "+tc.vers+" ", " "+ver.ID+" ") {
				continue
			}
			ev := baseEvent(ver)
			tc.change(ev)
			_, err := ParseEvent(marshal(t, ev), ver)
			if tc.jsonErr {
				var je *JSONError
				if !errors.As(err, &je) || !strings.Contains(je.Reason, tc.reason) {
					t.Errorf("v%s %s: got %v, want JSON error about %q", ver.ID, tc.name, err, tc.reason)
				}
				continue
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("v%s %s: got %v, want field %q: %q", ver.ID, tc.name, err, tc.field, tc.reason)
			}
			if errors.Is(err, ErrTooLarge) != tc.large || fe != nil && fe.TooLarge != tc.large {
				t.Errorf("v%s %s: errors.Is(err, ErrTooLarge) = %v, want %v", ver.ID, tc.name, errors.Is(err, ErrTooLarge), tc.large)
			}
		}
	}
}

func TestParseEventLimitsInclusive(t *testing.T) {
	for _, ver := range allVersions(t) {
		ev := baseEvent(ver)
		ev["sender"] = "@" + strings.Repeat("a", MaxIDSize-4) + ":x"
		ev["type"] = strings.Repeat("t", MaxIDSize)
		ev["state_key"] = strings.Repeat("é", MaxIDSize/2) // 254 bytes, 127 code points
		ev["room_id"] = "!" + strings.Repeat("r", MaxIDSize-1)
		if _, err := ParseEvent(marshal(t, ev), ver); err != nil {
			t.Errorf("v%s: 255-byte fields refused: %v", ver.ID, err)
		}
		ev["state_key"] = strings.Repeat("é", MaxIDSize/2+1) // 256 bytes, 128 code points
		if _, err := ParseEvent(marshal(t, ev), ver); err == nil {
			t.Errorf("v%s: 256-byte state_key accepted", ver.ID)
		}
		// The whole-event limit: grow the content to exactly the limit.
		ev = baseEvent(ver)
		ev["content"] = map[string]any{"body": ""}
		e, _ := ParseEvent(marshal(t, ev), ver)
		ev["content"] = map[string]any{"body": strings.Repeat("b", MaxEventSize-len(e.JSON()))}
		e, err := ParseEvent(marshal(t, ev), ver)
		if err != nil || len(e.JSON()) != MaxEventSize {
			t.Errorf("v%s: event of exactly %d bytes: %v", ver.ID, MaxEventSize, err)
		}
	}
}

func TestParseEventNotAnEvent(t *testing.T) {
	v1, _ := GetRoomVersion("1")
	for _, in := range []string{`[]`, `"x"`, `{`, ``, `{"a":1,"a":1}`} {
		if _, err := ParseEvent([]byte(in), v1); err == nil {
			t.Errorf("ParseEvent(%q) accepted", in)
		}
	}
	if _, err := ParseEvent([]byte(`{}`), nil); err == nil {
		t.Error("nil version accepted")
	}
}

func TestParseEventV12Create(t *testing.T) {
	v12, _ := GetRoomVersion("12")
	v11, _ := GetRoomVersion("11")
	create := baseEvent(v12)
	create["type"] = "m.room.create"
	create["state_key"] = ""
	create["prev_events"] = []any{}
	create["auth_events"] = []any{}
	delete(create, "room_id")
	ev, err := ParseEvent(marshal(t, create), v12)
	if err != nil {
		t.Fatal(err)
	}
	if ev.RoomID() != "!"+ev.EventID()[1:] {
		t.Errorf("RoomID %q for create %q", ev.RoomID(), ev.EventID())
	}
	// v11 needs a room_id on the create event.
	if _, err := ParseEvent(marshal(t, create), v11); err == nil {
		t.Error("v11 create without room_id accepted")
	}
	create["room_id"] = "!r:x"
	_, err = ParseEvent(marshal(t, create), v12)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Field != "room_id" || !strings.Contains(fe.Reason, "must be absent") {
		t.Errorf("v12 create with room_id: %v", err)
	}
	// An m.room.create that is not the create state event needs a room_id.
	delete(create, "room_id")
	create["state_key"] = "x"
	if _, err := ParseEvent(marshal(t, create), v12); !errors.As(err, &fe) || fe.Field != "room_id" {
		t.Errorf("v12 create with non-empty state key and no room_id: %v", err)
	}
}

func TestParseEventJoinAuthorisedVia(t *testing.T) {
	for _, ver := range allVersions(t) {
		ev := baseEvent(ver)
		ev["type"] = "m.room.member"
		ev["state_key"] = "@a:x"
		ev["content"] = map[string]any{"membership": "join", "join_authorised_via_users_server": "not-a-user"}
		_, err := ParseEvent(marshal(t, ev), ver)
		if ver.RestrictedJoins {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field != "content.join_authorised_via_users_server" {
				t.Errorf("v%s: bad join_authorised_via_users_server: %v", ver.ID, err)
			}
		} else if err != nil {
			t.Errorf("v%s: join_authorised_via_users_server has no meaning here, yet: %v", ver.ID, err)
		}
	}
}

func TestParseEventOptionalKeys(t *testing.T) {
	for _, ver := range allVersions(t) {
		ev := baseEvent(ver)
		ev["origin"] = "x"
		ev["unsigned"] = "not an object" // unsigned is dropped unread
		ev["type"] = "m.room.redaction"
		ev["redacts"] = "$top:x"
		ev["content"] = map[string]any{"redacts": "$content:x"}
		e, err := ParseEvent(marshal(t, ev), ver)
		if err != nil {
			t.Fatalf("v%s: %v", ver.ID, err)
		}
		want := "$top:x"
		if ver.RedactsInContent {
			want = "$content:x"
		}
		if e.Redacts() != want || e.Origin() != "x" {
			t.Errorf("v%s: Redacts %q Origin %q", ver.ID, e.Redacts(), e.Origin())
		}
		// Non-string origin is ignored; a message's content.redacts is not a redaction.
		ev["origin"] = 5
		ev["type"] = "m.room.message"
		e, err = ParseEvent(marshal(t, ev), ver)
		if err != nil || e.Origin() != "" || e.Redacts() != "" {
			t.Errorf("v%s: %v, Origin %q Redacts %q", ver.ID, err, e.Origin(), e.Redacts())
		}
	}
}

// TestParseEventEscapedStrings checks that strings needing escapes survive
// parsing, canonical re-encoding and the accessors.
func TestParseEventEscapedStrings(t *testing.T) {
	key := specKey(t)
	odd := "a\"b\\c\nd\te\u0001f/é😀"
	for _, ver := range allVersions(t) {
		p := ProtoEvent{Type: "org.example.\u0002" + odd, StateKey: strp(odd), Sender: "@" + odd + ":x", RoomID: "!" + odd + ":x",
			Content: []byte(`{"k\u0003":"v\u0004"}`), Depth: 1, PrevEvents: []string{"$" + odd}, AuthEvents: []string{"$" + odd}}
		if ver.EventIDs == EventIDOpaque {
			p.EventID = "$" + odd + ":x"
		}
		ev, err := p.Build(ver, "x\u0005", "ed25519:\u0006", key)
		if err != nil {
			t.Fatalf("v%s: %v", ver.ID, err)
		}
		if ev.StateTuple() != (StateKey{Type: p.Type, StateKey: odd}) || !ev.StateKeyEquals(odd) || !ev.IsState() ||
			ev.Sender() != p.Sender || ev.RoomID() != p.RoomID || ev.PrevEventIDs()[0] != "$"+odd || ev.AuthEventIDs()[0] != "$"+odd {
			t.Errorf("v%s: strings changed: %q %q %q %v", ver.ID, ev.StateTuple(), ev.Sender(), ev.RoomID(), ev.PrevEventIDs())
		}
		if ver.EventIDs == EventIDOpaque && ev.EventID() != p.EventID {
			t.Errorf("v%s: event ID %q", ver.ID, ev.EventID())
		}
		if _, ok := ev.Signatures()["x\u0005"]["ed25519:\u0006"]; !ok {
			t.Errorf("v%s: signatures %q", ver.ID, ev.Signatures())
		}
		if string(ev.Content()) != `{"k\u0003":"v\u0004"}` {
			t.Errorf("v%s: content %s", ver.ID, ev.Content())
		}
		if err := ev.CheckContentHash(); err != nil {
			t.Errorf("v%s: %v", ver.ID, err)
		}
	}
}
