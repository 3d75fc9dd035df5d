package clientapi_test

import (
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestProfile(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, tok := s.RegisterUser(t, "alice")
	bob, bobTok := s.RegisterUser(t, "bob")
	p := "/_matrix/client/v3/profile/" + alice

	doOK(t, s, "PUT", p+"/displayname", tok, map[string]any{"displayname": "Alice A."})
	doOK(t, s, "PUT", p+"/avatar_url", tok, map[string]any{"avatar_url": "mxc://example.org/abc"})
	doOK(t, s, "PUT", p+"/m.tz", tok, map[string]any{"m.tz": "Europe/Paris"})
	doOK(t, s, "PUT", p+"/org.example.pronouns", tok, map[string]any{"org.example.pronouns": []any{map[string]any{"summary": "she/her"}}})
	doOK(t, s, "PUT", p+"/org.example.null", tok, map[string]any{"org.example.null": nil})

	if m := doOK(t, s, "GET", p+"/displayname", "", nil); len(m) != 1 || m["displayname"] != "Alice A." {
		t.Fatalf("displayname %v", m)
	}
	all := doOK(t, s, "GET", p, tok, nil)
	if all["displayname"] != "Alice A." || all["avatar_url"] != "mxc://example.org/abc" || all["m.tz"] != "Europe/Paris" ||
		all["org.example.pronouns"] == nil || len(all) != 5 {
		t.Fatalf("profile %v", all)
	}
	if _, ok := all["org.example.null"]; !ok {
		t.Fatalf("a null value was not stored: %v", all)
	}
	// Delete a field.
	doOK(t, s, "DELETE", p+"/org.example.pronouns", tok, nil)
	doOK(t, s, "DELETE", p+"/org.example.pronouns", tok, nil) // absent: still fine
	st, raw := s.Do(t, "GET", p+"/org.example.pronouns", "", nil)
	wantErr(t, st, raw, 404, "M_NOT_FOUND")
	// An empty avatar_url clears it, as clients do.
	doOK(t, s, "PUT", p+"/avatar_url", tok, map[string]any{"avatar_url": ""})

	for _, c := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"someone else's", "PUT", p + "/displayname", bobTok, map[string]any{"displayname": "x"}, 403, "M_FORBIDDEN"},
		{"someone else's delete", "DELETE", p + "/m.tz", bobTok, nil, 403, "M_FORBIDDEN"},
		{"no token", "PUT", p + "/displayname", "", map[string]any{"displayname": "x"}, 401, "M_MISSING_TOKEN"},
		{"missing key", "PUT", p + "/displayname", tok, map[string]any{"avatar_url": "mxc://a/b"}, 400, "M_MISSING_PARAM"},
		{"displayname not a string", "PUT", p + "/displayname", tok, map[string]any{"displayname": 5}, 400, "M_BAD_JSON"},
		{"displayname null", "PUT", p + "/displayname", tok, map[string]any{"displayname": nil}, 400, "M_BAD_JSON"},
		{"displayname too long", "PUT", p + "/displayname", tok, map[string]any{"displayname": strings.Repeat("a", 257)}, 400, "M_INVALID_PARAM"},
		{"avatar not mxc", "PUT", p + "/avatar_url", tok, map[string]any{"avatar_url": "https://example.org/a.png"}, 400, "M_INVALID_PARAM"},
		{"invalid key", "PUT", p + "/Bad.Key", tok, map[string]any{"Bad.Key": 1}, 400, "M_INVALID_PARAM"},
		{"unnamespaced key", "PUT", p + "/pronouns", tok, map[string]any{"pronouns": 1}, 400, "M_INVALID_PARAM"},
		{"key too long", "PUT", p + "/org.example." + strings.Repeat("k", 250), tok, map[string]any{"x": 1}, 400, "M_KEY_TOO_LARGE"},
		{"invalid key on get", "GET", p + "/Bad", "", nil, 400, "M_INVALID_PARAM"},
		{"not JSON", "PUT", p + "/displayname", tok, "{", 400, "M_NOT_JSON"},
		{"not an object", "PUT", p + "/displayname", tok, `"x"`, 400, "M_BAD_JSON"},
		{"unknown user", "GET", "/_matrix/client/v3/profile/@nobody:" + s.Name, "", nil, 404, "M_NOT_FOUND"},
		{"unknown user field", "GET", "/_matrix/client/v3/profile/@nobody:" + s.Name + "/displayname", "", nil, 404, "M_NOT_FOUND"},
		{"not a user ID", "GET", "/_matrix/client/v3/profile/alice", "", nil, 400, "M_INVALID_PARAM"},
		{"bad token on a public read", "GET", p, "nonsense", nil, 401, "M_UNKNOWN_TOKEN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, raw := s.Do(t, c.method, c.path, c.token, c.body)
			wantErr(t, st, raw, c.status, c.code)
		})
	}
	if m := doOK(t, s, "GET", p+"/displayname", "", nil); m["displayname"] != "Alice A." {
		t.Fatalf("a refused change went through: %v", m)
	}

	// The whole profile stays under 64 KiB.
	big := strings.Repeat("x", 40_000)
	doOK(t, s, "PUT", "/_matrix/client/v3/profile/"+bob+"/org.example.big1", bobTok, map[string]any{"org.example.big1": big})
	st, raw = s.Do(t, "PUT", "/_matrix/client/v3/profile/"+bob+"/org.example.big2", bobTok, map[string]any{"org.example.big2": big})
	wantErr(t, st, raw, 400, "M_PROFILE_TOO_LARGE")
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/profile/"+bob+"/org.example.big2", "", nil)
	wantErr(t, st, raw, 404, "M_NOT_FOUND")
	// Replacing the big field with another big one fits.
	doOK(t, s, "PUT", "/_matrix/client/v3/profile/"+bob+"/org.example.big1", bobTok, map[string]any{"org.example.big1": big + "y"})
}

func TestCapabilities(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	caps := doOK(t, s, "GET", "/_matrix/client/v3/capabilities", tok, nil)["capabilities"].(map[string]any)
	enabled := func(name string) bool { return caps[name].(map[string]any)["enabled"].(bool) }
	if !enabled("m.change_password") || !enabled("m.set_displayname") || !enabled("m.set_avatar_url") ||
		enabled("m.3pid_changes") || enabled("m.get_login_token") || !enabled("m.profile_fields") {
		t.Fatalf("capabilities %v", caps)
	}
	rv := caps["m.room_versions"].(map[string]any)
	avail := rv["available"].(map[string]any)
	if rv["default"] != "11" || len(avail) != 12 {
		t.Fatalf("room versions %v", rv)
	}
	for _, v := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"} {
		if avail[v] != "stable" {
			t.Fatalf("room version %s: %v", v, avail[v])
		}
	}
	st, raw := s.Do(t, "GET", "/_matrix/client/v3/capabilities", "", nil)
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
}
