package pdu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRequiredSigners(t *testing.T) {
	cases := []struct {
		name    string
		vers    string
		change  func(ev map[string]any)
		signers []string
	}{
		{"sender's server", "", func(ev map[string]any) {}, []string{"x"}},
		{"v1-2 event ID server too", "1 2", func(ev map[string]any) { ev["event_id"] = "$e:y" }, []string{"x", "y"}},
		{"server with port", "3 12", func(ev map[string]any) { ev["sender"] = "@a:[::1]:8448" }, []string{"[::1]:8448"}},
		{"third-party invite exempts the sender's server", "3 10 12", func(ev map[string]any) {
			ev["type"], ev["state_key"] = "m.room.member", "@b:z"
			ev["content"] = map[string]any{"membership": "invite", "third_party_invite": map[string]any{}}
		}, nil},
		{"third-party invite, v1: event ID server still", "1", func(ev map[string]any) {
			ev["type"], ev["state_key"], ev["event_id"] = "m.room.member", "@b:z", "$e:y"
			ev["content"] = map[string]any{"membership": "invite", "third_party_invite": map[string]any{}}
		}, []string{"y"}},
		{"restricted join: authorising server", "8 9 10 11 12", func(ev map[string]any) {
			ev["type"], ev["state_key"] = "m.room.member", "@a:x"
			ev["content"] = map[string]any{"membership": "join", "join_authorised_via_users_server": "@admin:auth.example"}
		}, []string{"x", "auth.example"}},
		{"authorising server same as sender", "9", func(ev map[string]any) {
			ev["type"], ev["state_key"] = "m.room.member", "@a:x"
			ev["content"] = map[string]any{"membership": "join", "join_authorised_via_users_server": "@admin:x"}
		}, []string{"x"}},
		{"before v8 the key means nothing", "1 7", func(ev map[string]any) {
			ev["type"], ev["state_key"] = "m.room.member", "@a:x"
			ev["content"] = map[string]any{"membership": "join", "join_authorised_via_users_server": "@admin:auth.example"}
		}, []string{"x"}},
		{"only for joins", "9", func(ev map[string]any) {
			ev["type"], ev["state_key"] = "m.room.member", "@a:x"
			ev["content"] = map[string]any{"membership": "leave", "join_authorised_via_users_server": "@admin:auth.example"}
		}, []string{"x"}},
	}
	for _, tc := range cases {
		for _, ver := range allVersions(t) {
			if tc.vers != "" && !strings.Contains(" "+tc.vers+" ", " "+ver.ID+" ") {
				continue
			}
			ev := baseEvent(ver)
			tc.change(ev)
			e, err := ParseEvent(marshal(t, ev), ver)
			if err != nil {
				t.Fatalf("v%s %s: %v", ver.ID, tc.name, err)
			}
			if got := RequiredSigners(e); !slices.Equal(got, tc.signers) {
				t.Errorf("v%s %s: RequiredSigners = %v, want %v", ver.ID, tc.name, got, tc.signers)
			}
		}
	}
}

func TestDomainOf(t *testing.T) {
	for in, want := range map[string]string{"@a:x": "x", "@a:x:80": "x:80", "$abc": "", "!r:[::1]": "[::1]", "": ""} {
		if got := DomainOf(in); got != want {
			t.Errorf("DomainOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	key := specKey(t)
	v1, _ := GetRoomVersion("1")
	v6, _ := GetRoomVersion("6")
	v11, _ := GetRoomVersion("11")
	v12, _ := GetRoomVersion("12")
	ok := ProtoEvent{Type: "m.room.message", Sender: "@a:x", RoomID: "!r:x", Depth: 1, Content: []byte(`{"body":"x"}`)}
	with := func(f func(p *ProtoEvent)) ProtoEvent { p := ok; f(&p); return p }
	for _, tc := range []struct {
		name  string
		p     ProtoEvent
		ver   *RoomVersion
		field string
		msg   string
	}{
		{"no version", ok, nil, "", "no room version"},
		{"content not JSON", with(func(p *ProtoEvent) { p.Content = []byte(`{`) }), v6, "content", "bad JSON"},
		{"content not an object", with(func(p *ProtoEvent) { p.Content = []byte(`[1]`) }), v6, "content", "not an object"},
		{"float in v6 content", with(func(p *ProtoEvent) { p.Content = []byte(`{"a":1.5}`) }), v6, "content", "not an integer"},
		{"v1 needs an event ID", ok, v1, "event_id", "caller-made"},
		{"v6 derives event IDs", with(func(p *ProtoEvent) { p.EventID = "$e:x" }), v6, "event_id", "leave EventID empty"},
		{"v12 create with room ID", with(func(p *ProtoEvent) { p.Type, p.StateKey = "m.room.create", strp("") }), v12, "room_id", "must be empty"},
		{"v11 conflicting redacts", with(func(p *ProtoEvent) {
			p.Type, p.Redacts, p.Content = "m.room.redaction", "$a", []byte(`{"redacts":"$b"}`)
		}), v11, "content.redacts", "differs"},
		{"bad sender", with(func(p *ProtoEvent) { p.Sender = "alice" }), v6, "sender", "does not start"},
		{"missing room ID", with(func(p *ProtoEvent) { p.RoomID = "" }), v6, "room_id", "missing"},
		{"negative depth", with(func(p *ProtoEvent) { p.Depth = -1 }), v6, "depth", "negative"},
		{"invalid UTF-8", with(func(p *ProtoEvent) { p.Type = "\xff" }), v6, "", "invalid UTF-8"},
	} {
		_, err := tc.p.Build(tc.ver, "x", "ed25519:1", key)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
			continue
		}
		var fe *FormatError
		if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
			t.Errorf("%s: %v, want field %q", tc.name, err, tc.field)
		}
	}
	if _, err := ok.Build(v6, "x", "ed25519:1", key[:3]); err == nil {
		t.Error("short key accepted")
	}
	// Redacts given in both places, agreeing, and inserted into content.
	for _, content := range []string{`{"redacts":"$a","reason":"r"}`, `{"reason":"r"}`, ``} {
		p := with(func(p *ProtoEvent) { p.Type, p.Redacts, p.Content = "m.room.redaction", "$a", []byte(content) })
		ev, err := p.Build(v11, "x", "ed25519:1", key)
		if err != nil || ev.Redacts() != "$a" {
			t.Errorf("content %s: %v, Redacts %q", content, err, ev.Redacts())
		}
	}
	// Built v1 events carry [id, {}] pairs.
	p := with(func(p *ProtoEvent) {
		p.EventID, p.PrevEvents, p.AuthEvents = "$e:x", []string{"$p:x"}, []string{"$a:x", "$b:x"}
	})
	ev, err := p.Build(v1, "x", "ed25519:1", key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ev.JSON()), `"auth_events":[["$a:x",{}],["$b:x",{}]]`) {
		t.Errorf("v1 pairs: %s", ev.JSON())
	}
}

func TestFormatErrorText(t *testing.T) {
	if got := (&FormatError{Field: "depth", Reason: "negative"}).Error(); got != "invalid event: depth: negative" {
		t.Error(got)
	}
	if got := (&FormatError{Reason: "too big"}).Error(); got != "invalid event: too big" {
		t.Error(got)
	}
	if _, err := GetRoomVersion("99"); err == nil || err.Error() != `unsupported room version "99"` {
		t.Errorf("GetRoomVersion(99): %v", err)
	}
}

func TestCheckReferenceLimits(t *testing.T) {
	for _, ver := range allVersions(t) {
		ev := baseEvent(ver)
		ref := func(i int) any {
			if ver.PrevAuthAsPairs() {
				return []any{"$" + strings.Repeat("x", i) + ":x", map[string]any{}}
			}
			return "$" + strings.Repeat("x", i)
		}
		refs := func(n int) []any {
			out := []any{}
			for i := range n {
				out = append(out, ref(i))
			}
			return out
		}
		for _, tc := range []struct {
			prev, auth int
			field      string
		}{{20, 10, ""}, {21, 10, "prev_events"}, {20, 11, "auth_events"}} {
			ev["prev_events"], ev["auth_events"] = refs(tc.prev), refs(tc.auth)
			e, err := ParseEvent(marshal(t, ev), ver)
			if err != nil {
				t.Fatalf("v%s: ParseEvent must accept %d/%d references: %v", ver.ID, tc.prev, tc.auth, err)
			}
			err = e.CheckReferenceLimits()
			var fe *FormatError
			if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Errorf("v%s: %d prev, %d auth: %v", ver.ID, tc.prev, tc.auth, err)
			}
		}
	}
}
