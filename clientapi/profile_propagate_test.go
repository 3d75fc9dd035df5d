package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestProfilePropagation: a new displayname or avatar reaches the member
// event of every joined room; a custom field does not.
func TestProfilePropagation(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, tok := s.RegisterUser(t, "alice")
	var rooms []string
	for range 2 {
		var r struct {
			RoomID string `json:"room_id"`
		}
		s.DoJSON(t, "POST", "/_matrix/client/v3/createRoom", tok, map[string]any{}, &r)
		rooms = append(rooms, r.RoomID)
	}
	member := func(roomID string) map[string]any {
		return doOK(t, s, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/state/m.room.member/"+url.PathEscape(alice), tok, nil)
	}
	if m := member(rooms[0]); m["displayname"] != "alice" || m["membership"] != "join" {
		t.Fatalf("member event at creation %v", m)
	}
	p := "/_matrix/client/v3/profile/" + alice
	doOK(t, s, "PUT", p+"/displayname", tok, map[string]any{"displayname": "Alice"})
	doOK(t, s, "PUT", p+"/avatar_url", tok, map[string]any{"avatar_url": "mxc://example.org/face"})
	doOK(t, s, "PUT", p+"/org.example.x", tok, map[string]any{"org.example.x": 1})
	for _, roomID := range rooms {
		m := member(roomID)
		if m["displayname"] != "Alice" || m["avatar_url"] != "mxc://example.org/face" || m["membership"] != "join" || m["org.example.x"] != nil {
			t.Fatalf("room %s: member event %v", roomID, m)
		}
	}
	// Removing the avatar removes it from the member events.
	doOK(t, s, "DELETE", p+"/avatar_url", tok, nil)
	if m := member(rooms[1]); m["avatar_url"] != nil || m["displayname"] != "Alice" {
		t.Fatalf("after deleting the avatar: %v", m)
	}
}
