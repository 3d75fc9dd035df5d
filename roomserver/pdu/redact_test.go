package pdu

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

// redactInput is an event carrying every top-level key the algorithms
// treat differently; content and type are filled in per case.
func redactInput(evType, content string) string {
	return `{"auth_events":[],"content":` + content + `,"depth":1,"event_id":"$e:x","extra":1,` +
		`"hashes":{"sha256":"h"},"membership":"join","origin":"x","origin_server_ts":1,"prev_events":[],` +
		`"prev_state":[],"redacts":"$r","room_id":"!r:x","sender":"@a:x","signatures":{"x":{"ed25519:1":"s"}},` +
		`"state_key":"","type":"` + evType + `","unsigned":{"age":1}}`
}

// redactOutput is the expected result: top-level keys by algorithm, with
// the expected content.
func redactOutput(rules RedactionRules, evType, content string) string {
	old := ""
	if rules < RedactionV11 {
		old = `"membership":"join","origin":"x",`
	}
	out := `{"auth_events":[],"content":` + content + `,"depth":1,"event_id":"$e:x",` +
		`"hashes":{"sha256":"h"},` + old + `"origin_server_ts":1,"prev_events":[],`
	if rules < RedactionV11 {
		out += `"prev_state":[],`
	}
	return out + `"room_id":"!r:x","sender":"@a:x","signatures":{"x":{"ed25519:1":"s"}},"state_key":"","type":"` + evType + `"}`
}

func TestRedactByVersion(t *testing.T) {
	const (
		member    = `{"displayname":"A","join_authorised_via_users_server":"@b:y","membership":"join","third_party_invite":{"display_name":"d","signed":{"mxid":"@a:x","token":"t"}}}`
		create    = `{"creator":"@a:x","m.federate":false,"room_version":"1"}`
		joinRules = `{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted","other":1}`
		power     = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,"notifications":{"room":50},"redact":50,"state_default":50,"users":{"@a:x":100},"users_default":0}`
		powerOld  = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:x":100},"users_default":0}`
		powerNew  = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:x":100},"users_default":0}`
	)
	// want maps a room version to the expected content after redaction.
	cases := []struct {
		evType, content string
		want            map[string]string
	}{
		{"m.room.member", member, map[string]string{
			"1": `{"membership":"join"}`, "6": `{"membership":"join"}`, "8": `{"membership":"join"}`,
			"9":  `{"join_authorised_via_users_server":"@b:y","membership":"join"}`,
			"10": `{"join_authorised_via_users_server":"@b:y","membership":"join"}`,
			"11": `{"join_authorised_via_users_server":"@b:y","membership":"join","third_party_invite":{"signed":{"mxid":"@a:x","token":"t"}}}`,
			"12": `{"join_authorised_via_users_server":"@b:y","membership":"join","third_party_invite":{"signed":{"mxid":"@a:x","token":"t"}}}`,
		}},
		{"m.room.member", `{"membership":"invite","third_party_invite":{"display_name":"d"}}`, map[string]string{
			"10": `{"membership":"invite"}`, "11": `{"membership":"invite","third_party_invite":{}}`,
		}},
		{"m.room.member", `{"membership":"invite","third_party_invite":"odd"}`, map[string]string{
			"11": `{"membership":"invite"}`,
		}},
		{"m.room.create", create, map[string]string{
			"1": `{"creator":"@a:x"}`, "10": `{"creator":"@a:x"}`, "11": create, "12": create,
		}},
		{"m.room.join_rules", joinRules, map[string]string{
			"1": `{"join_rule":"restricted"}`, "7": `{"join_rule":"restricted"}`,
			"8":  `{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted"}`,
			"11": `{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted"}`,
		}},
		{"m.room.power_levels", power, map[string]string{
			"1": powerOld, "6": powerOld, "10": powerOld, "11": powerNew, "12": powerNew,
		}},
		{"m.room.aliases", `{"aliases":["#a:x"]}`, map[string]string{
			"1": `{"aliases":["#a:x"]}`, "5": `{"aliases":["#a:x"]}`, "6": `{}`, "11": `{}`,
		}},
		{"m.room.history_visibility", `{"history_visibility":"shared","x":1}`, map[string]string{
			"1": `{"history_visibility":"shared"}`, "12": `{"history_visibility":"shared"}`,
		}},
		{"m.room.redaction", `{"reason":"spam","redacts":"$x"}`, map[string]string{
			"1": `{}`, "10": `{}`, "11": `{"redacts":"$x"}`, "12": `{"redacts":"$x"}`,
		}},
		{"m.room.message", `{"body":"b","msgtype":"m.text"}`, map[string]string{
			"1": `{}`, "12": `{}`,
		}},
	}
	for _, tc := range cases {
		for id, wantContent := range tc.want {
			ver, _ := GetRoomVersion(id)
			got, err := Redact([]byte(redactInput(tc.evType, tc.content)), ver)
			if err != nil {
				t.Errorf("v%s %s: %v", id, tc.evType, err)
				continue
			}
			want := redactOutput(ver.Redaction, tc.evType, wantContent)
			if string(got) != want {
				t.Errorf("v%s %s:\n got %s\nwant %s", id, tc.evType, got, want)
			}
			again, err := Redact(got, ver)
			if err != nil || string(again) != string(got) {
				t.Errorf("v%s %s: redaction not idempotent: %s", id, tc.evType, again)
			}
		}
	}
}

func TestRedactEdgeCases(t *testing.T) {
	v1, _ := GetRoomVersion("1")
	v6, _ := GetRoomVersion("6")
	// No content at all: the result still has an empty content object.
	got, err := Redact([]byte(`{"type":"m.room.message","sender":"@a:x","z":1}`), v1)
	if err != nil || string(got) != `{"content":{},"sender":"@a:x","type":"m.room.message"}` {
		t.Errorf("no content: %s, %v", got, err)
	}
	got, err = Redact([]byte(`{"type":"m.room.message","auth_events":[]}`), v1)
	if err != nil || string(got) != `{"auth_events":[],"content":{},"type":"m.room.message"}` {
		t.Errorf("no content, content sorts last: %s, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`[]`, "not a JSON object"},
		{`{"type":1,"content":{}}`, "type: not a string"},
		{`{"type":"m.room.member","content":[]}`, "content: not an object"},
		{`{"type":"x","content":{},"n":1.5}`, "not an integer"},
		{`{"a":1,"a":2}`, "duplicate"},
	} {
		_, err := Redact([]byte(tc.in), v6)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Redact(%s) = %v, want error about %q", tc.in, err, tc.want)
		}
	}
}

func TestEventRedacted(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	for _, ver := range allVersions(t) {
		p := ProtoEvent{Type: "m.room.member", StateKey: strp("@a:x"), Sender: "@a:x", RoomID: "!r:x", Depth: 3,
			Content: []byte(`{"membership":"join","displayname":"Alice","join_authorised_via_users_server":"@b:y"}`)}
		if ver.EventIDs == EventIDOpaque {
			p.EventID = "$m:x"
		}
		ev, err := p.Build(ver, "x", "ed25519:1", key)
		if err != nil {
			t.Fatalf("v%s: %v", ver.ID, err)
		}
		red := ev.Redacted()
		if red.EventID() != ev.EventID() || red.RoomID() != ev.RoomID() || red.Membership() != "join" {
			t.Errorf("v%s: redacted event lost identity: %s %s %q", ver.ID, red.EventID(), red.RoomID(), red.Membership())
		}
		if strings.Contains(string(red.Content()), "displayname") {
			t.Errorf("v%s: displayname survived redaction: %s", ver.ID, red.Content())
		}
		// The signature covers the redacted form; the content hash the full one.
		if err := red.VerifySignature("x", "ed25519:1", pub); err != nil {
			t.Errorf("v%s: redacted event signature: %v", ver.ID, err)
		}
		if err := red.CheckContentHash(); !errors.Is(err, ErrContentHashMismatch) {
			t.Errorf("v%s: redacted event content hash: %v", ver.ID, err)
		}
		// The reference hash of v3+ does not change with redaction.
		if ver.EventIDs != EventIDOpaque {
			again, err := ParseEvent(red.JSON(), ver)
			if err != nil || again.EventID() != ev.EventID() {
				t.Errorf("v%s: redacted event reparsed: %v %v", ver.ID, again, err)
			}
		}
		wantSigners := 1
		if ver.Redaction >= RedactionV9 {
			wantSigners = 2 // the authorising server's signature survives redaction from v9
		} else if ver.RestrictedJoins {
			wantSigners = 1 // the v8 bug: redaction strips join_authorised_via_users_server
		}
		if got := RequiredSigners(red); len(got) != wantSigners {
			t.Errorf("v%s: RequiredSigners(redacted) = %v", ver.ID, got)
		}
	}
}

func TestRedactContentLast(t *testing.T) {
	v1, _ := GetRoomVersion("1")
	got, err := Redact([]byte(`{"auth_events":[]}`), v1)
	if err != nil || string(got) != `{"auth_events":[],"content":{}}` {
		t.Errorf("got %s, %v", got, err)
	}
}

func TestHashAndSignErrors(t *testing.T) {
	key := specKey(t)
	v6, _ := GetRoomVersion("6")
	for _, tc := range []struct{ in, msg string }{
		{`{`, "bad JSON"},
		{`[]`, "not a JSON object"},
		{`{"type":1}`, "type: not a string"},
		{`{"type":"x","content":1}`, "content: not an object"},
		{`{"type":"x","signatures":1}`, "signatures: not an object"},
		{`{"type":"x","n":1.5}`, "not an integer"},
	} {
		if _, err := hashAndSign([]byte(tc.in), v6, "x", "ed25519:1", key); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("hashAndSign(%s) = %v, want %q", tc.in, err, tc.msg)
		}
	}
	if _, err := hashAndSign([]byte(`{}`), v6, "x", "bad", key); err == nil {
		t.Error("bad key ID accepted")
	}
	// hashes sorts last when every other key sorts before it.
	out, err := hashAndSign([]byte(`{"content":{},"depth":1,"type":"x"}`), v6, "x", "ed25519:1", key)
	if err != nil || !strings.HasPrefix(string(out), `{"content":{},"depth":1,"hashes":{"sha256":`) {
		t.Errorf("got %s, %v", out, err)
	}
	out, err = hashAndSign([]byte(`{"a":1}`), v6, "x", "ed25519:1", key)
	if err != nil || !strings.HasPrefix(string(out), `{"a":1,"hashes":{"sha256":`) {
		t.Errorf("got %s, %v", out, err)
	}
}
