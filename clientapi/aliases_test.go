package clientapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestAliases(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "room_alias_name": "main"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	dir := func(alias string) string { return v3 + "/directory/room/" + urlEscape(alias) }
	main, second, bobs := "#main:"+s.Name, "#second:"+s.Name, "#bobs:"+s.Name

	// Any member may add an alias; strangers may not.
	alice.ok(t, "PUT", dir(second), map[string]any{"room_id": roomID})
	bob.ok(t, "PUT", dir(bobs), map[string]any{"room_id": roomID})
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", dir("#carols:"+s.Name), map[string]any{"room_id": roomID})
	alice.fails(t, http.StatusConflict, "M_UNKNOWN", "PUT", dir(second), map[string]any{"room_id": roomID})

	// Resolving needs no token.
	status, raw := s.Do(t, "GET", dir(second), "", nil)
	if status != 200 || !strings.Contains(string(raw), roomID) || !strings.Contains(string(raw), `"servers":["`+s.Name+`"]`) {
		t.Errorf("GET alias without a token: %d %s", status, raw)
	}
	if got := alice.ok(t, "GET", room(roomID)+"/aliases", nil).Get("aliases"); len(got.Array()) != 3 ||
		got.Array()[0].Str != bobs || got.Array()[1].Str != main || got.Array()[2].Str != second {
		t.Errorf("room aliases %s", got.Raw)
	}
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/aliases", nil)

	// Deleting: the alias's creator, or a member with the power to send
	// m.room.canonical_alias; not another member without it.
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "DELETE", dir(second), nil)
	bob.ok(t, "DELETE", dir(bobs), nil)
	alice.ok(t, "PUT", room(roomID)+"/state/m.room.canonical_alias/", map[string]any{"alias": main, "alt_aliases": []string{second}})
	alice.ok(t, "DELETE", dir(second), nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", dir(second), nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "DELETE", dir(second), nil)
	// The deleted alias left the canonical alias event.
	if ca := alice.state(t, roomID, "m.room.canonical_alias", ""); ca.Get("alias").Str != main || ca.Get("alt_aliases").Exists() {
		t.Errorf("canonical alias after the delete: %s", ca.Raw)
	}
	// The creator of the room (power 100) deletes the alias bob could not.
	bob.ok(t, "PUT", dir(bobs), map[string]any{"room_id": roomID})
	alice.ok(t, "DELETE", dir(bobs), nil)

	// Bad input.
	before := streamPos(t, s)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"PUT", dir("#x:elsewhere.example"), map[string]any{"room_id": roomID}, 400, "M_INVALID_PARAM"},
		{"PUT", dir("nohash:" + s.Name), map[string]any{"room_id": roomID}, 400, "M_INVALID_PARAM"},
		{"PUT", dir("#has space:" + s.Name), map[string]any{"room_id": roomID}, 400, "M_INVALID_PARAM"},
		{"PUT", dir("#x:" + s.Name), map[string]any{}, 400, "M_MISSING_PARAM"},
		{"PUT", dir("#x:" + s.Name), map[string]any{"room_id": 1}, 400, "M_BAD_JSON"},
		{"PUT", dir("#x:" + s.Name), map[string]any{"room_id": "x"}, 400, "M_INVALID_PARAM"},
		{"PUT", dir("#x:" + s.Name), map[string]any{"room_id": "!unknown:" + s.Name}, 404, "M_NOT_FOUND"},
		{"PUT", dir("#x:" + s.Name), `{`, 400, "M_NOT_JSON"},
		{"GET", dir("#x:" + s.Name), nil, 404, "M_NOT_FOUND"},
		{"GET", dir("#x:elsewhere.example"), nil, 404, "M_NOT_FOUND"},
		{"GET", dir("x"), nil, 400, "M_INVALID_PARAM"},
		{"DELETE", dir("#x:elsewhere.example"), nil, 400, "M_INVALID_PARAM"},
		{"GET", room("!unknown:"+s.Name) + "/aliases", nil, 404, "M_NOT_FOUND"},
	} {
		alice.fails(t, c.status, c.code, c.method, c.path, c.body)
	}
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
	if _, err := s.DB().GetAlias(t.Context(), "#x:"+s.Name); err == nil {
		t.Error("a refused PUT stored the alias")
	}
}
