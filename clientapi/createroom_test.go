package clientapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestCreateRoomDefaults(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	if !strings.HasSuffix(roomID, ":"+s.Name) {
		t.Errorf("room ID %q: a version 11 room ID has our server name", roomID)
	}

	state := alice.ok(t, "GET", room(roomID)+"/state", nil)
	var types []string
	for _, ev := range state.Array() {
		types = append(types, ev.Get("type").Str+"|"+ev.Get("state_key").Str)
		if ev.Get("room_id").Str != roomID || ev.Get("sender").Str != alice.id || !strings.HasPrefix(ev.Get("event_id").Str, "$") {
			t.Errorf("state event %s", ev.Raw)
		}
	}
	slices.Sort(types)
	want := []string{"m.room.create|", "m.room.guest_access|", "m.room.history_visibility|",
		"m.room.join_rules|", "m.room.member|" + alice.id, "m.room.power_levels|"}
	if !slices.Equal(types, want) {
		t.Fatalf("state %v, want %v", types, want)
	}
	if c := alice.state(t, roomID, "m.room.create", ""); c.Get("room_version").Str != "11" || c.Get("creator").Exists() {
		t.Errorf("create %s", c.Raw)
	}
	if c := alice.state(t, roomID, "m.room.join_rules", ""); c.Get("join_rule").Str != "invite" {
		t.Errorf("join rules %s", c.Raw)
	}
	if c := alice.state(t, roomID, "m.room.guest_access", ""); c.Get("guest_access").Str != "can_join" {
		t.Errorf("guest access %s", c.Raw)
	}
	pl := alice.state(t, roomID, "m.room.power_levels", "")
	if pl.Get("users").Get(gjsonKey(alice.id)).Int() != 100 || pl.Get("invite").Int() != 0 || pl.Get("state_default").Int() != 50 {
		t.Errorf("power levels %s", pl.Raw)
	}
	if got := alice.roomsWith(t, "join"); !slices.Equal(got, []string{roomID}) {
		t.Errorf("alice's rooms %v", got)
	}
}

func TestCreateRoomOptions(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	alice.ok(t, "PUT", v3+"/profile/"+alice.id+"/displayname", map[string]string{"displayname": "Alice A."})

	roomID := alice.createRoom(t, map[string]any{
		"preset": "public_chat", "visibility": "public", "room_alias_name": "pub",
		"name": "The Pub", "topic": "Happy hour",
		"invite": []string{bob.id}, "is_direct": true,
		"initial_state": []any{
			map[string]any{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
			map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}},
		},
		"creation_content": map[string]any{"m.federate": false, "type": "m.space"},
	})
	alias := "#pub:" + s.Name
	checks := []struct {
		evType, key, path, want string
	}{
		{"m.room.join_rules", "", "join_rule", "public"},
		{"m.room.guest_access", "", "guest_access", "forbidden"},
		{"m.room.history_visibility", "", "history_visibility", "world_readable"},
		{"m.room.encryption", "", "algorithm", "m.megolm.v1.aes-sha2"},
		{"m.room.name", "", "name", "The Pub"},
		{"m.room.topic", "", "topic", "Happy hour"},
		{"m.room.canonical_alias", "", "alias", alias},
		{"m.room.create", "", "type", "m.space"},
		{"m.room.member", alice.id, "displayname", "Alice A."},
		{"m.room.member", bob.id, "membership", "invite"},
	}
	for _, c := range checks {
		if got := alice.state(t, roomID, c.evType, c.key).Get(gjsonKey(c.path)).String(); got != c.want {
			t.Errorf("%s/%s %s = %q, want %q", c.evType, c.key, c.path, got, c.want)
		}
	}
	if !alice.state(t, roomID, "m.room.member", bob.id).Get("is_direct").Bool() {
		t.Error("the invite has no is_direct")
	}
	if alice.state(t, roomID, "m.room.create", "").Get(gjsonKey("m.federate")).Bool() {
		t.Error("creation_content m.federate lost")
	}
	if pl := alice.state(t, roomID, "m.room.power_levels", ""); pl.Get("invite").Int() != 50 || pl.Get("users").Get(gjsonKey(bob.id)).Exists() {
		t.Errorf("public_chat power levels %s", pl.Raw)
	}
	if got := bob.roomsWith(t, "invite"); !slices.Equal(got, []string{roomID}) {
		t.Errorf("bob's invites %v", got)
	}
	if got := alice.ok(t, "GET", v3+"/directory/room/"+urlEscape(alias), nil).Get("room_id").Str; got != roomID {
		t.Errorf("alias resolves to %q", got)
	}
	if got := alice.ok(t, "GET", v3+"/directory/list/room/"+urlEscape(roomID), nil).Get("visibility").Str; got != "public" {
		t.Errorf("directory visibility %q", got)
	}

	// The taken alias is refused, and nothing is written.
	before := streamPos(t, s)
	alice.fails(t, http.StatusBadRequest, "M_ROOM_IN_USE", "POST", v3+"/createRoom", map[string]any{"room_alias_name": "pub"})
	if after := streamPos(t, s); after != before {
		t.Errorf("a refused createRoom moved the stream from %d to %d", before, after)
	}

	// trusted_private_chat: invitees get the creator's power level.
	tr := alice.createRoom(t, map[string]any{"preset": "trusted_private_chat", "invite": []string{bob.id}})
	if pl := alice.state(t, tr, "m.room.power_levels", ""); pl.Get("users").Get(gjsonKey(bob.id)).Int() != 100 {
		t.Errorf("trusted_private_chat power levels %s", pl.Raw)
	}
}

func TestCreateRoomVersions(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	for v := 1; v <= 12; v++ {
		ver := fmt.Sprint(v)
		roomID := alice.createRoom(t, map[string]any{"room_version": ver, "name": "v" + ver})
		c := alice.state(t, roomID, "m.room.create", "")
		if c.Get("room_version").Str != ver {
			t.Errorf("v%s: create %s", ver, c.Raw)
		}
		if got := alice.state(t, roomID, "m.room.name", "").Get("name").Str; got != "v"+ver {
			t.Errorf("v%s: name %q", ver, got)
		}
		// Creators are named in content.creator up to v10.
		if (v <= 10) != (c.Get("creator").Str == alice.id) {
			t.Errorf("v%s: creator in content: %s", ver, c.Raw)
		}
		pl := alice.state(t, roomID, "m.room.power_levels", "")
		if v == 12 {
			// The room ID is the create event's ID; creators are not in
			// the power levels, and tombstones need more than admins have.
			if strings.Contains(roomID, ":") || pl.Get("users").Get(gjsonKey(alice.id)).Exists() ||
				pl.Get(gjsonKey("events.m.room.tombstone")).Int() != 150 {
				t.Errorf("v12: room %s, power levels %s", roomID, pl.Raw)
			}
			ev := alice.ok(t, "GET", room(roomID)+"/state/m.room.create/?format=event", nil)
			if "!"+strings.TrimPrefix(ev.Get("event_id").Str, "$") != roomID {
				t.Errorf("v12: create event %s for room %s", ev.Get("event_id").Str, roomID)
			}
		} else if pl.Get("users").Get(gjsonKey(alice.id)).Int() != 100 {
			t.Errorf("v%s: power levels %s", ver, pl.Raw)
		}
	}

	// A v12 trusted private chat makes the invitees creators.
	bob := newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"room_version": "12", "preset": "trusted_private_chat", "invite": []string{bob.id}})
	if ac := alice.state(t, roomID, "m.room.create", "").Get("additional_creators"); len(ac.Array()) != 1 || ac.Array()[0].Str != bob.id {
		t.Errorf("v12 additional_creators %s", ac.Raw)
	}
}

func TestCreateRoomErrors(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	before := streamPos(t, s)
	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{`{"room_version": "13"}`, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{`{"room_version": 11}`, 400, "M_BAD_JSON"},
		{`{"preset": "party"}`, 400, "M_BAD_JSON"},
		{`{"name": 5}`, 400, "M_BAD_JSON"},
		{`{"invite": "@bob:x"}`, 400, "M_BAD_JSON"},
		{`{"invite": ["not a user"]}`, 400, "M_INVALID_PARAM"},
		{`{"initial_state": [{"type": "m.x", "content": "no"}]}`, 400, "M_BAD_JSON"},
		{`{"creation_content": 1}`, 400, "M_BAD_JSON"},
		{`{"room_alias_name": "#a:b"}`, 400, "M_INVALID_PARAM"},
		{`[]`, 400, "M_BAD_JSON"},
		{`{"name": "x"`, 400, "M_NOT_JSON"},
		{``, 400, "M_NOT_JSON"},
		{`{"name": "` + strings.Repeat("x", 70000) + `"}`, 413, "M_TOO_LARGE"},
		// The creator loses the power to send the preset's events.
		{`{"power_level_content_override": {"users": {}}}`, 400, "M_INVALID_ROOM_STATE"},
		// A second create event.
		{`{"initial_state": [{"type": "m.room.create", "content": {}}]}`, 400, "M_INVALID_ROOM_STATE"},
		// An event over 64 KiB.
		{`{"initial_state": [{"type": "m.big", "content": {"a": "` + strings.Repeat("x", 60000) + `", "b": "` + strings.Repeat("y", 5000) + `"}}]}`, 413, "M_TOO_LARGE"},
	} {
		alice.fails(t, c.status, c.code, "POST", v3+"/createRoom", c.body)
	}
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
	if got := alice.roomsWith(t); len(got) != 0 {
		t.Errorf("refused requests left rooms %v", got)
	}
	// No access token.
	status, raw := s.Do(t, "POST", v3+"/createRoom", "", map[string]any{})
	if status != 401 || gjson.GetBytes(raw, "errcode").Str != "M_MISSING_TOKEN" {
		t.Errorf("without a token: %d %s", status, raw)
	}
}

// gjsonKey escapes a key (or a dotted path whose parts are keys with dots
// of their own, like "events.m.room.tombstone" = events → m.room.tombstone)
// for gjson.
func gjsonKey(k string) string {
	if rest, ok := strings.CutPrefix(k, "events."); ok {
		return "events." + strings.ReplaceAll(rest, ".", `\.`)
	}
	return strings.ReplaceAll(k, ".", `\.`)
}

func urlEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "#", "%23"), "!", "%21")
}
