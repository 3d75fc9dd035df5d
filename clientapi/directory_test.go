package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestPublicRoomDirectory(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	// Five published rooms with 1..5 joined members, one private room.
	var rooms []string
	var members []*user
	for i := range 5 {
		id := alice.createRoom(t, map[string]any{
			"visibility": "public", "name": fmt.Sprintf("Room %d", i), "topic": fmt.Sprintf("topic %d", i),
			"room_alias_name": fmt.Sprintf("r%d", i),
		})
		for len(members) < i {
			members = append(members, newUser(t, s, fmt.Sprintf("m%d", len(members))))
		}
		for _, m := range members[:i] {
			m.ok(t, "POST", room(id)+"/join", nil)
		}
		rooms = append(rooms, id)
	}
	space := alice.createRoom(t, map[string]any{"visibility": "public", "name": "A space", "creation_content": map[string]any{"type": "m.space"}})
	private := alice.createRoom(t, map[string]any{"name": "Hidden"})

	// Everything, most members first, without a token.
	status, raw := s.Do(t, "GET", v3+"/publicRooms", "", nil)
	if status != 200 {
		t.Fatalf("GET /publicRooms: %d %s", status, raw)
	}
	res := gjson.ParseBytes(raw)
	chunk := res.Get("chunk").Array()
	if len(chunk) != 6 || res.Get("total_room_count_estimate").Int() != 6 || res.Get("next_batch").Exists() {
		t.Fatalf("listing %s", raw)
	}
	if chunk[0].Get("room_id").Str != rooms[4] || chunk[0].Get("num_joined_members").Int() != 5 ||
		chunk[0].Get("name").Str != "Room 4" || chunk[0].Get("topic").Str != "topic 4" ||
		chunk[0].Get("canonical_alias").Str != "#r4:"+s.Name || chunk[0].Get("join_rule").Str != "public" ||
		chunk[0].Get("world_readable").Bool() || chunk[0].Get("guest_can_join").Bool() {
		t.Errorf("first entry %s", chunk[0].Raw)
	}
	for _, c := range chunk {
		if c.Get("room_id").Str == private {
			t.Error("the private room is listed")
		}
	}

	// Pages of 2 forwards, then back.
	var seen []string
	since := ""
	for page := 0; ; page++ {
		q := "?limit=2"
		if since != "" {
			q += "&since=" + url.QueryEscape(since)
		}
		res := bob.ok(t, "GET", v3+"/publicRooms"+q, nil)
		for _, c := range res.Get("chunk").Array() {
			seen = append(seen, c.Get("room_id").Str)
		}
		if page > 0 && !res.Get("prev_batch").Exists() {
			t.Errorf("page %d has no prev_batch", page)
		}
		if !res.Get("next_batch").Exists() {
			// Going back from the last page gives the page before it.
			if prev := res.Get("prev_batch").Str; prev != "" {
				back := bob.ok(t, "GET", v3+"/publicRooms?limit=2&since="+url.QueryEscape(prev), nil).Get("chunk").Array()
				if len(back) != 2 || back[0].Get("room_id").Str != seen[2] || back[1].Get("room_id").Str != seen[3] {
					t.Errorf("back page %v, want %v", back, seen[2:4])
				}
			}
			break
		}
		since = res.Get("next_batch").Str
	}
	// Every room once, in the order of the unpaged listing.
	if len(seen) != len(chunk) {
		t.Fatalf("paged listing %v", seen)
	}
	for i, c := range chunk {
		if seen[i] != c.Get("room_id").Str {
			t.Errorf("paged listing %v differs from the full listing at %d", seen, i)
		}
	}

	// Filters, through POST.
	res = bob.ok(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "TOPIC 3"}})
	if c := res.Get("chunk").Array(); len(c) != 1 || c[0].Get("room_id").Str != rooms[3] {
		t.Errorf("search: %s", res.Raw)
	}
	res = bob.ok(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "#r2:"}})
	if c := res.Get("chunk").Array(); len(c) != 1 || c[0].Get("room_id").Str != rooms[2] {
		t.Errorf("search by alias: %s", res.Raw)
	}
	res = bob.ok(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}, "include_all_networks": true})
	if c := res.Get("chunk").Array(); len(c) != 1 || c[0].Get("room_id").Str != space || c[0].Get("room_type").Str != "m.space" {
		t.Errorf("room_types m.space: %s", res.Raw)
	}
	res = bob.ok(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{nil}}, "limit": 1})
	if c := res.Get("chunk").Array(); len(c) != 1 || c[0].Get("room_id").Str != rooms[4] || res.Get("total_room_count_estimate").Int() != 5 {
		t.Errorf("room_types null: %s", res.Raw)
	}

	// Publishing and unpublishing.
	dirList := func(id string) string { return v3 + "/directory/list/room/" + urlEscape(id) }
	if v := bob.ok(t, "GET", dirList(private), nil).Get("visibility").Str; v != "private" {
		t.Errorf("private room visibility %q", v)
	}
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", dirList(private), map[string]any{"visibility": "public"})
	alice.ok(t, "PUT", dirList(private), map[string]any{})
	if v := bob.ok(t, "GET", dirList(private), nil).Get("visibility").Str; v != "public" {
		t.Errorf("after publishing: %q", v)
	}
	alice.ok(t, "PUT", dirList(rooms[0]), map[string]any{"visibility": "private"})
	if n := len(bob.ok(t, "GET", v3+"/publicRooms", nil).Get("chunk").Array()); n != 6 {
		t.Errorf("after publishing one and unpublishing another: %d rooms", n)
	}

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"GET", v3 + "/publicRooms?limit=x", nil, 400, "M_INVALID_PARAM"},
		{"GET", v3 + "/publicRooms?since=garbage", nil, 400, "M_INVALID_PARAM"},
		{"GET", v3 + "/publicRooms?server=elsewhere.example", nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/publicRooms", map[string]any{"limit": "2"}, 400, "M_BAD_JSON"},
		{"POST", v3 + "/publicRooms", map[string]any{"limit": -1}, 400, "M_INVALID_PARAM"},
		{"POST", v3 + "/publicRooms", map[string]any{"filter": []any{}}, 400, "M_BAD_JSON"},
		{"POST", v3 + "/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": 1}}, 400, "M_BAD_JSON"},
		{"POST", v3 + "/publicRooms", `x`, 400, "M_NOT_JSON"},
		{"GET", dirList("!unknown:" + s.Name), nil, 404, "M_NOT_FOUND"},
		{"PUT", dirList("!unknown:" + s.Name), map[string]any{}, 404, "M_NOT_FOUND"},
		{"PUT", dirList(private), map[string]any{"visibility": "secret"}, 400, "M_INVALID_PARAM"},
		{"PUT", dirList(private), map[string]any{"visibility": 1}, 400, "M_BAD_JSON"},
	} {
		alice.fails(t, c.status, c.code, c.method, c.path, c.body)
	}
	status, _ = s.Do(t, "POST", v3+"/publicRooms", "", map[string]any{})
	if status != 401 {
		t.Errorf("POST /publicRooms without a token: %d", status)
	}
}
