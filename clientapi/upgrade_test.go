package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestUpgradeRoom(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, mallory := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "mallory")
	old := alice.createRoom(t, map[string]any{
		"room_version": "10", "preset": "public_chat", "visibility": "public",
		"room_alias_name": "up", "name": "Old name", "topic": "Old topic",
		"creation_content": map[string]any{"type": "m.space"},
		"initial_state": []any{
			map[string]any{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}},
			map[string]any{"type": "m.room.server_acl", "content": map[string]any{"allow": []string{"*"}}},
			map[string]any{"type": "com.example.custom", "content": map[string]any{"x": 1}},
		},
		// Alice at 90 may upgrade but is below the power levels level (100).
		"power_level_content_override": map[string]any{
			"users":  map[string]int{"@alice:" + s.Name: 90},
			"events": map[string]int{"m.room.tombstone": 90, "m.room.power_levels": 100, "m.room.name": 50},
		},
	})
	bob.ok(t, "POST", room(old)+"/join", nil)
	mallory.ok(t, "POST", room(old)+"/join", nil)
	alice.ok(t, "POST", room(old)+"/ban", map[string]any{"user_id": mallory.id, "reason": "spam"})
	alice.ok(t, "PUT", room(old)+"/state/m.room.canonical_alias/", map[string]any{"alias": "#up:" + s.Name})
	last := alice.send(t, old, "last", map[string]any{"body": "last message"})

	// Bob may not upgrade; bad versions are refused; nothing happens.
	before := streamPos(t, s)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(old)+"/upgrade", map[string]any{"new_version": "11"})
	alice.fails(t, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "POST", room(old)+"/upgrade", map[string]any{"new_version": "99"})
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "POST", room(old)+"/upgrade", map[string]any{})
	alice.fails(t, http.StatusBadRequest, "M_BAD_JSON", "POST", room(old)+"/upgrade", map[string]any{"new_version": 11})
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "POST", room(old)+"/upgrade", map[string]any{"new_version": "12", "additional_creators": []string{"bob"}})
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "POST", room("!nope:"+s.Name)+"/upgrade", map[string]any{"new_version": "11"})
	if after := streamPos(t, s); after != before {
		t.Errorf("refused upgrades moved the stream from %d to %d", before, after)
	}

	newRoom := alice.ok(t, "POST", room(old)+"/upgrade", map[string]any{"new_version": "11"}).Get("replacement_room").Str
	if newRoom == "" || newRoom == old {
		t.Fatalf("replacement room %q", newRoom)
	}
	create := alice.state(t, newRoom, "m.room.create", "")
	if create.Get("room_version").Str != "11" || create.Get("predecessor.room_id").Str != old ||
		create.Get("predecessor.event_id").Str != last || create.Get("type").Str != "m.space" {
		t.Errorf("new create %s", create.Raw)
	}
	for _, c := range []struct{ typ, key, path, want string }{
		{"m.room.name", "", "name", "Old name"},
		{"m.room.topic", "", "topic", "Old topic"},
		{"m.room.join_rules", "", "join_rule", "public"},
		{"m.room.encryption", "", "algorithm", "m.megolm.v1.aes-sha2"},
		{"m.room.server_acl", "", "allow.0", "*"},
		{"m.room.canonical_alias", "", "alias", "#up:" + s.Name},
		{"m.room.member", mallory.id, "membership", "ban"},
		{"m.room.member", mallory.id, "reason", "spam"},
	} {
		if got := alice.state(t, newRoom, c.typ, c.key).Get(c.path).String(); got != c.want {
			t.Errorf("new room %s %s = %q, want %q", c.typ, c.path, got, c.want)
		}
	}
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room(newRoom)+"/state/com.example.custom/", nil)
	// The power levels are the old ones again after the copy.
	if pl := alice.state(t, newRoom, "m.room.power_levels", ""); pl.Get("users").Get(gjsonKey(alice.id)).Int() != 90 ||
		pl.Get(gjsonKey("events.m.room.tombstone")).Int() != 90 {
		t.Errorf("new power levels %s", pl.Raw)
	}

	// The old room: tombstoned, quietened, without its alias and directory entry.
	if tomb := alice.state(t, old, "m.room.tombstone", ""); tomb.Get("replacement_room").Str != newRoom {
		t.Errorf("tombstone %s", tomb.Raw)
	}
	if got := alice.ok(t, "GET", v3+"/directory/room/"+urlEscape("#up:"+s.Name), nil).Get("room_id").Str; got != newRoom {
		t.Errorf("alias points to %q", got)
	}
	if ca := alice.state(t, old, "m.room.canonical_alias", ""); ca.Get("alias").Exists() {
		t.Errorf("old canonical alias %s", ca.Raw)
	}
	if v := alice.ok(t, "GET", v3+"/directory/list/room/"+urlEscape(old), nil).Get("visibility").Str; v != "private" {
		t.Errorf("old room visibility %q", v)
	}
	if v := alice.ok(t, "GET", v3+"/directory/list/room/"+urlEscape(newRoom), nil).Get("visibility").Str; v != "public" {
		t.Errorf("new room visibility %q", v)
	}
	// Alice (90) may not change the old room's power levels (100 needed),
	// so they stay as they were and bob may still talk there.
	if pl := alice.state(t, old, "m.room.power_levels", ""); pl.Get("events_default").Int() != 0 {
		t.Errorf("old power levels changed without the power to: %s", pl.Raw)
	}
	bob.send(t, old, "still", map[string]any{"body": "still here"})

	// Where the upgrading user is an admin, the old room is quietened:
	// events_default and invite go up to 50.
	own := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(own)+"/join", nil)
	v12 := alice.ok(t, "POST", room(own)+"/upgrade", map[string]any{"new_version": "12", "additional_creators": []string{bob.id}}).Get("replacement_room").Str
	if pl := alice.state(t, own, "m.room.power_levels", ""); pl.Get("events_default").Int() != 50 || pl.Get("invite").Int() != 50 {
		t.Errorf("old room power levels after the upgrade %s", pl.Raw)
	}
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", room(own)+"/send/m.room.message/x", map[string]any{"body": "hi"})
	create = alice.state(t, v12, "m.room.create", "")
	if create.Get("room_version").Str != "12" || create.Get("additional_creators.0").Str != bob.id {
		t.Errorf("v12 create %s", create.Raw)
	}
	if pl := alice.state(t, v12, "m.room.power_levels", ""); pl.Get("users").Get(gjsonKey(alice.id)).Exists() {
		t.Errorf("v12 power levels list the creator: %s", pl.Raw)
	}
}
