package clientapi

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/httputil"
)

func noProfile(string) memberProfile { return memberProfile{} }

func planOf(t *testing.T, body string) *createRoomPlan {
	t.Helper()
	var req createRoomRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	plan, err := planCreateRoom(&req, "@alice:hs", "hs", func(u string) memberProfile {
		if u == "@alice:hs" {
			return memberProfile{DisplayName: "Alice", AvatarURL: "mxc://hs/a"}
		}
		return memberProfile{}
	})
	if err != nil {
		t.Fatalf("planCreateRoom(%s): %v", body, err)
	}
	return plan
}

// keys lists the events as "type|state_key".
func keys(p *createRoomPlan) []string {
	var ks []string
	for _, e := range p.Events {
		ks = append(ks, e.Type+"|"+e.StateKey)
	}
	return ks
}

func find(t *testing.T, p *createRoomPlan, typ, key string) gjson.Result {
	t.Helper()
	for _, e := range p.Events {
		if e.Type == typ && e.StateKey == key {
			return gjson.ParseBytes(e.Content)
		}
	}
	t.Fatalf("no %s/%q event in %v", typ, key, keys(p))
	return gjson.Result{}
}

func TestPlanOrder(t *testing.T) {
	p := planOf(t, `{
		"preset": "private_chat", "room_alias_name": "pub", "name": "N", "topic": "T",
		"invite": ["@bob:hs", "@carol:other", "@bob:hs"], "is_direct": true,
		"initial_state": [
			{"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
			{"type": "m.room.name", "content": {"name": "overridden by name"}},
			{"type": "com.example", "state_key": "k", "content": {"v": 1}},
			{"type": "com.example", "state_key": "k", "content": {"v": 2}}
		]}`)
	want := []string{
		"m.room.member|@alice:hs",
		"m.room.power_levels|",
		"m.room.canonical_alias|",
		"m.room.join_rules|",
		"m.room.history_visibility|",
		"m.room.guest_access|",
		"m.room.encryption|",
		"com.example|k",
		"m.room.name|",
		"m.room.topic|",
		"m.room.member|@bob:hs",
		"m.room.member|@carol:other",
	}
	if got := keys(p); !slices.Equal(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	if p.Version.ID != "11" || p.Publish || p.Alias != "#pub:hs" {
		t.Errorf("version %s publish %v alias %q", p.Version.ID, p.Publish, p.Alias)
	}
	if j := find(t, p, "m.room.member", "@alice:hs"); j.Get("membership").Str != "join" ||
		j.Get("displayname").Str != "Alice" || j.Get("avatar_url").Str != "mxc://hs/a" || j.Get("is_direct").Exists() {
		t.Errorf("creator join = %s", j.Raw)
	}
	if j := find(t, p, "m.room.member", "@bob:hs"); j.Get("membership").Str != "invite" || !j.Get("is_direct").Bool() {
		t.Errorf("invite = %s", j.Raw)
	}
	if j := find(t, p, "com.example", "k"); j.Get("v").Int() != 2 {
		t.Errorf("initial_state duplicate: the last should win, got %s", j.Raw)
	}
	if j := find(t, p, "m.room.name", ""); j.Get("name").Str != "N" {
		t.Errorf("name = %s", j.Raw)
	}
	if j := find(t, p, "m.room.topic", ""); j.Get("topic").Str != "T" || j.Get("m\\.topic.m\\.text.0.body").Str != "T" {
		t.Errorf("topic = %s", j.Raw)
	}
	if j := find(t, p, "m.room.canonical_alias", ""); j.Get("alias").Str != "#pub:hs" {
		t.Errorf("canonical alias = %s", j.Raw)
	}
}

func TestPlanPresets(t *testing.T) {
	for _, c := range []struct {
		body                    string
		join, history, guest    string
		invite                  int64
		publish, inviteesAdmins bool
	}{
		{`{}`, "invite", "shared", "can_join", 0, false, false},
		{`{"visibility": "private"}`, "invite", "shared", "can_join", 0, false, false},
		{`{"visibility": "public"}`, "public", "shared", "forbidden", 50, true, false},
		{`{"preset": "public_chat"}`, "public", "shared", "forbidden", 50, false, false},
		{`{"preset": "private_chat", "visibility": "public"}`, "invite", "shared", "can_join", 0, true, false},
		{`{"preset": "trusted_private_chat", "invite": ["@bob:hs"]}`, "invite", "shared", "can_join", 0, false, true},
	} {
		p := planOf(t, c.body)
		if j := find(t, p, "m.room.join_rules", ""); j.Get("join_rule").Str != c.join {
			t.Errorf("%s: join_rules %s", c.body, j.Raw)
		}
		if j := find(t, p, "m.room.history_visibility", ""); j.Get("history_visibility").Str != c.history {
			t.Errorf("%s: history_visibility %s", c.body, j.Raw)
		}
		if j := find(t, p, "m.room.guest_access", ""); j.Get("guest_access").Str != c.guest {
			t.Errorf("%s: guest_access %s", c.body, j.Raw)
		}
		pl := find(t, p, "m.room.power_levels", "")
		if pl.Get("invite").Int() != c.invite || pl.Get(`users.@alice:hs`).Int() != 100 {
			t.Errorf("%s: power levels %s", c.body, pl.Raw)
		}
		if got := pl.Get(`users.@bob:hs`).Int() == 100; got != c.inviteesAdmins {
			t.Errorf("%s: invitee at 100 = %v, want %v", c.body, got, c.inviteesAdmins)
		}
		if p.Publish != c.publish {
			t.Errorf("%s: publish %v", c.body, p.Publish)
		}
	}
}

func TestPlanPowerLevels(t *testing.T) {
	p := planOf(t, `{"power_level_content_override": {"events_default": 10, "users": {"@x:hs": 5}}}`)
	pl := find(t, p, "m.room.power_levels", "")
	// The override replaces top-level keys whole, as Synapse does.
	if pl.Get("events_default").Int() != 10 || pl.Get("users.@x:hs").Int() != 5 || pl.Get("users.@alice:hs").Exists() {
		t.Errorf("override: %s", pl.Raw)
	}
	if pl.Get("state_default").Int() != 50 || pl.Get("events.m\\.room\\.tombstone").Int() != 100 {
		t.Errorf("defaults: %s", pl.Raw)
	}

	// initial_state's power levels replace the default, at step 3, and the
	// override still applies on top.
	p = planOf(t, `{"initial_state": [{"type": "m.room.power_levels", "content": {"users": {"@alice:hs": 100}, "ban": 7}}],
		"power_level_content_override": {"kick": 3}}`)
	pl = find(t, p, "m.room.power_levels", "")
	if pl.Get("ban").Int() != 7 || pl.Get("kick").Int() != 3 || pl.Get("state_default").Exists() {
		t.Errorf("initial_state power levels: %s", pl.Raw)
	}
	if n := slices.Index(keys(p), "m.room.power_levels|"); n != 1 || slices.Index(keys(p)[2:], "m.room.power_levels|") >= 0 {
		t.Errorf("power levels should be sent once, second: %v", keys(p))
	}
}

func TestPlanVersion12(t *testing.T) {
	p := planOf(t, `{"room_version": "12", "preset": "trusted_private_chat", "invite": ["@bob:hs"],
		"creation_content": {"additional_creators": ["@carol:hs", "@bob:hs"], "m.federate": false}}`)
	if p.Version.ID != "12" {
		t.Fatalf("version %s", p.Version.ID)
	}
	pl := find(t, p, "m.room.power_levels", "")
	if pl.Get("users.@alice:hs").Exists() || pl.Get("users.@bob:hs").Exists() {
		t.Errorf("v12 power levels must not list creators: %s", pl.Raw)
	}
	if pl.Get("events.m\\.room\\.tombstone").Int() != 150 {
		t.Errorf("v12 tombstone level: %s", pl.Raw)
	}
	cc := gjson.ParseBytes(p.CreationContent)
	var ac []string
	for _, v := range cc.Get("additional_creators").Array() {
		ac = append(ac, v.Str)
	}
	if !slices.Equal(ac, []string{"@carol:hs", "@bob:hs"}) || cc.Get("m\\.federate").Bool() {
		t.Errorf("creation content %s", cc.Raw)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		body, code string
	}{
		{`{"room_version": "99"}`, httputil.CodeUnsupportedRoomVersion},
		{`{"room_version": ""}`, httputil.CodeUnsupportedRoomVersion},
		{`{"preset": "party"}`, httputil.CodeBadJSON},
		{`{"visibility": "secret"}`, httputil.CodeBadJSON},
		{`{"invite": ["bob"]}`, httputil.CodeInvalidParam},
		{`{"invite": ["@bob"]}`, httputil.CodeInvalidParam},
		{`{"invite": ["@bob:bad server"]}`, httputil.CodeInvalidParam},
		{`{"invite": ["@alice:hs"]}`, httputil.CodeInvalidParam},
		{`{"room_alias_name": "a:hs"}`, httputil.CodeInvalidParam},
		{`{"room_alias_name": "a b"}`, httputil.CodeInvalidParam},
		{`{"room_alias_name": ""}`, httputil.CodeInvalidParam},
		{`{"creation_content": []}`, httputil.CodeBadJSON},
		{`{"creation_content": "x"}`, httputil.CodeBadJSON},
		{`{"power_level_content_override": 1}`, httputil.CodeBadJSON},
		{`{"initial_state": [{"content": {}}]}`, httputil.CodeBadJSON},
		{`{"initial_state": [{"type": "m.x"}]}`, httputil.CodeBadJSON},
		{`{"initial_state": [{"type": "m.x", "content": null}]}`, httputil.CodeBadJSON},
		{`{"initial_state": [{"type": "m.x", "content": [1]}]}`, httputil.CodeBadJSON},
		{`{"room_version": "12", "preset": "trusted_private_chat", "invite": ["@b:hs"], "creation_content": {"additional_creators": "x"}}`, httputil.CodeBadJSON},
		{`{"invite_3pid": [{"id_server": "x", "medium": "email", "address": "a@b"}]}`, httputil.CodeUnrecognized},
	} {
		var req createRoomRequest
		if err := json.Unmarshal([]byte(c.body), &req); err != nil {
			t.Fatal(err)
		}
		_, err := planCreateRoom(&req, "@alice:hs", "hs", noProfile)
		var me *httputil.Error
		if !errors.As(err, &me) || me.Code != c.code || me.Status != 400 {
			t.Errorf("%s: got %v, want 400 %s", c.body, err, c.code)
		}
	}
}

// FuzzPlanCreateRoom feeds arbitrary bodies to the createRoom request
// parsing: it must never panic, and every refusal is a 4xx Matrix error.
//
//	go test -run='^$' -fuzz=FuzzPlanCreateRoom -fuzztime=60s -parallel=1 ./clientapi/
func FuzzPlanCreateRoom(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"preset": "trusted_private_chat", "invite": ["@b:hs"], "room_version": "12", "creation_content": {"additional_creators": ["@c:hs"]}}`,
		`{"initial_state": [{"type": "m.room.power_levels", "content": {"users": {}}}], "power_level_content_override": {"ban": 1}}`,
		`{"room_alias_name": "x", "name": "n", "topic": "t", "visibility": "public", "is_direct": true}`,
		`{"initial_state": [{"type": "a", "state_key": "b", "content": {}}, {"type": "a", "state_key": "b", "content": {"x": 1}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req createRoomRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		plan, err := planCreateRoom(&req, "@alice:hs", "hs", noProfile)
		if err != nil {
			var me *httputil.Error
			if !errors.As(err, &me) || me.Status < 400 || me.Status >= 500 {
				t.Fatalf("%s: error %v is not a 4xx Matrix error", body, err)
			}
			return
		}
		if len(plan.Events) < 2 || plan.Events[0].Type != "m.room.member" || plan.Events[1].Type != "m.room.power_levels" {
			t.Fatalf("%s: plan starts %v", body, keys(plan))
		}
		for _, ev := range plan.Events {
			if !json.Valid(ev.Content) || ev.Content[0] != '{' {
				t.Fatalf("%s: content %q of %s is not an object", body, ev.Content, ev.Type)
			}
		}
	})
}
