package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

func directorySearch(t *testing.T, s *servertest.Server, tok, term string, limit int) (ids []string, names map[string]string, limited bool) {
	t.Helper()
	body := map[string]any{"search_term": term}
	if limit > 0 {
		body["limit"] = limit
	}
	var resp struct {
		Results []struct {
			UserID      string `json:"user_id"`
			DisplayName string `json:"display_name"`
		} `json:"results"`
		Limited *bool `json:"limited"`
	}
	s.DoJSON(t, "POST", "/_matrix/client/v3/user_directory/search", tok, body, &resp)
	if resp.Limited == nil || resp.Results == nil {
		t.Fatalf("search %q: results and limited are required", term)
	}
	names = map[string]string{}
	for _, r := range resp.Results {
		ids = append(ids, r.UserID)
		names[r.UserID] = r.DisplayName
	}
	return ids, names, *resp.Limited
}

func createRoom(t *testing.T, s *servertest.Server, tok string, body map[string]any) string {
	t.Helper()
	var r struct {
		RoomID string `json:"room_id"`
	}
	s.DoJSON(t, "POST", "/_matrix/client/v3/createRoom", tok, body, &r)
	return r.RoomID
}

// TestUserDirectoryVisibility runs with search_all_users off, so only the
// room rules decide: shared rooms and public rooms.
func TestUserDirectoryVisibility(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.UserDirectorySearchAllUsers = false
	}))[0]
	_, searcher := s.RegisterUser(t, "searcher")
	sharer, sharerTok := s.RegisterUser(t, "mate_shared")
	public, publicTok := s.RegisterUser(t, "mate_public")
	_, hiddenTok := s.RegisterUser(t, "mate_hidden")

	private := createRoom(t, s, sharerTok, map[string]any{"preset": "private_chat", "invite": []string{"@searcher:" + s.Name}})
	s.DoJSON(t, "POST", "/_matrix/client/v3/rooms/"+url.PathEscape(private)+"/join", searcher, map[string]any{}, nil)
	createRoom(t, s, publicTok, map[string]any{"preset": "public_chat"})
	createRoom(t, s, hiddenTok, map[string]any{"preset": "private_chat"})

	ids, _, limited := directorySearch(t, s, searcher, "MATE", 0)
	if len(ids) != 2 || ids[0] != public && ids[1] != public || limited {
		t.Fatalf("found %v (limited %v), want %s and %s", ids, limited, sharer, public)
	}
	for _, id := range ids {
		if id != sharer && id != public {
			t.Fatalf("found %s, who shares no room and is in no public room", id)
		}
	}
	// Display names are searched too, and returned.
	s.DoJSON(t, "PUT", "/_matrix/client/v3/profile/"+url.PathEscape(public)+"/displayname", publicTok, map[string]any{"displayname": "Zebra Crossing"}, nil)
	ids, names, _ := directorySearch(t, s, searcher, "zebra", 0)
	if len(ids) != 1 || ids[0] != public || names[public] != "Zebra Crossing" {
		t.Fatalf("search by display name: %v %v", ids, names)
	}
	// The limit.
	ids, _, limited = directorySearch(t, s, searcher, "mate", 1)
	if len(ids) != 1 || !limited {
		t.Fatalf("limit 1: %v limited %v", ids, limited)
	}
	// LIKE wildcards in the term are plain characters.
	if ids, _, _ := directorySearch(t, s, searcher, "%", 0); len(ids) != 0 {
		t.Fatalf("%% matched %v", ids)
	}
	if ids, _, _ := directorySearch(t, s, searcher, "mate_", 0); len(ids) != 2 {
		t.Fatalf("'mate_' matched %v", ids)
	}
}

func TestUserDirectoryAllLocalUsers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "searcher")
	loner, _ := s.RegisterUser(t, "loner")
	ids, names, _ := directorySearch(t, s, tok, "lon", 0)
	if len(ids) != 1 || ids[0] != loner || names[loner] != "loner" {
		t.Fatalf("local users: %v %v", ids, names)
	}
	if ids, _, _ := directorySearch(t, s, tok, "", 0); len(ids) != 0 {
		t.Fatalf("empty term matched %v", ids)
	}
	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{}, 400, "M_MISSING_PARAM"},
		{map[string]any{"search_term": 5}, 400, "M_BAD_JSON"},
		{map[string]any{"search_term": "x", "limit": "5"}, 400, "M_BAD_JSON"},
		{map[string]any{"search_term": "x", "limit": -1}, 400, "M_INVALID_PARAM"},
		{"{", 400, "M_NOT_JSON"},
	} {
		st, raw := s.Do(t, "POST", "/_matrix/client/v3/user_directory/search", tok, c.body)
		wantErr(t, st, raw, c.status, c.code)
	}
	st, raw := s.Do(t, "POST", "/_matrix/client/v3/user_directory/search", "", map[string]any{"search_term": "x"})
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
}
