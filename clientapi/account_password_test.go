package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const whoamiPath = "/_matrix/client/v3/account/whoami"

func TestChangePassword(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, tok := s.RegisterUser(t, "alice")
	other, _ := s.Login(t, "alice")
	const path = "/_matrix/client/v3/account/password"

	st, raw := s.Do(t, "POST", path, tok, map[string]any{"new_password": "new-pw"})
	u := wantUIA(t, st, raw, "")
	if len(u.Flows) != 1 || u.Flows[0].Stages[0] != "m.login.password" {
		t.Fatalf("flows %s", raw)
	}
	// A wrong password fails the stage and changes nothing.
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"new_password": "new-pw",
		"auth": passwordAuth(u.Session, userID, "wrong")})
	if u2 := wantUIA(t, st, raw, "M_FORBIDDEN"); u2.Session != u.Session || len(u2.Completed) != 0 {
		t.Fatalf("after a wrong password: %s", raw)
	}
	// Another user's identifier fails too.
	s.RegisterUser(t, "bob")
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"new_password": "new-pw",
		"auth": passwordAuth(u.Session, "bob", servertest.TestPassword)})
	wantUIA(t, st, raw, "M_FORBIDDEN")
	s.Login(t, "alice") // the old password still works
	doOK(t, s, "GET", whoamiPath, other, nil)

	doOK(t, s, "POST", path, tok, map[string]any{"new_password": "new-pw",
		"auth": passwordAuth(u.Session, "alice", servertest.TestPassword)})
	// logout_devices defaults to true: other sessions ended, this one not.
	st, raw = s.Do(t, "GET", whoamiPath, other, nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	doOK(t, s, "GET", whoamiPath, tok, nil)
	if n := len(doOK(t, s, "GET", "/_matrix/client/v3/devices", tok, nil)["devices"].([]any)); n != 1 {
		t.Fatalf("%d devices after the change, want 1", n)
	}
	st, raw = s.Do(t, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice", "password": servertest.TestPassword})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	doOK(t, s, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice", "password": "new-pw"})
	// The session is spent.
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"new_password": "other",
		"auth": passwordAuth(u.Session, "alice", "new-pw")})
	wantErr(t, st, raw, 400, "M_UNKNOWN")

	// logout_devices false keeps the other sessions.
	keep := doOK(t, s, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice", "password": "new-pw"})["access_token"].(string)
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"new_password": "third", "logout_devices": false})
	u = wantUIA(t, st, raw, "")
	doOK(t, s, "POST", path, tok, map[string]any{"new_password": "third", "logout_devices": false,
		"auth": passwordAuth(u.Session, userID, "new-pw")})
	doOK(t, s, "GET", whoamiPath, keep, nil)

	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{}, 400, "M_MISSING_PARAM"},
		{map[string]any{"new_password": 5}, 400, "M_BAD_JSON"},
		{map[string]any{"new_password": "x", "logout_devices": "no"}, 400, "M_BAD_JSON"},
		{map[string]any{"new_password": ""}, 400, "M_MISSING_PARAM"},
		{map[string]any{"new_password": string(make([]byte, 513))}, 400, "M_INVALID_PARAM"},
		{map[string]any{"new_password": "x", "auth": []int{1}}, 400, "M_BAD_JSON"},
		{"{", 400, "M_NOT_JSON"},
	} {
		st, raw := s.Do(t, "POST", path, tok, c.body)
		wantErr(t, st, raw, c.status, c.code)
	}
	st, raw = s.Do(t, "POST", path, "", map[string]any{"new_password": "x"})
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	// A session started by another user cannot be used.
	bobTok, _ := s.Login(t, "bob")
	st, raw = s.Do(t, "POST", path, bobTok, map[string]any{"new_password": "x"})
	bobSession := wantUIA(t, st, raw, "").Session
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"new_password": "x",
		"auth": passwordAuth(bobSession, userID, "third")})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
}

func TestDeactivate(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, tok := s.RegisterUser(t, "alice")
	other, _ := s.Login(t, "alice")
	const path = "/_matrix/client/v3/account/deactivate"
	// A room alice is in, and one she is invited to.
	bob, bobTok := s.RegisterUser(t, "bob")
	joined := createRoom(t, s, tok, map[string]any{"invite": []string{bob}})
	invited := createRoom(t, s, bobTok, map[string]any{"invite": []string{userID}})
	s.DoJSON(t, "POST", "/_matrix/client/v3/rooms/"+url.PathEscape(joined)+"/join", bobTok, map[string]any{}, nil)
	st, raw := s.Do(t, "POST", path, tok, map[string]any{})
	u := wantUIA(t, st, raw, "")
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"auth": passwordAuth(u.Session, userID, "wrong")})
	wantUIA(t, st, raw, "M_FORBIDDEN")
	doOK(t, s, "GET", whoamiPath, tok, nil)
	st, raw = s.Do(t, "POST", path, tok, map[string]any{"erase": "yes"})
	wantErr(t, st, raw, 400, "M_BAD_JSON")

	m := doOK(t, s, "POST", path, tok, map[string]any{"auth": passwordAuth(u.Session, userID, servertest.TestPassword), "erase": true})
	if m["id_server_unbind_result"] != "no-support" {
		t.Fatalf("response %v", m)
	}
	for _, tk := range []string{tok, other} {
		st, raw := s.Do(t, "GET", whoamiPath, tk, nil)
		wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	}
	st, raw = s.Do(t, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice", "password": servertest.TestPassword})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	// The user ID is never given out again.
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/register/available?username=alice", "", nil)
	wantErr(t, st, raw, 400, "M_USER_IN_USE")
	// She left the room and rejected the invite.
	for _, roomID := range []string{joined, invited} {
		m := doOK(t, s, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/state/m.room.member/"+url.PathEscape(userID), bobTok, nil)
		if m["membership"] != "leave" {
			t.Fatalf("room %s: membership after deactivation %v", roomID, m)
		}
	}
	// erase removed the profile.
	if p := doOK(t, s, "GET", "/_matrix/client/v3/profile/"+userID, "", nil); len(p) != 0 {
		t.Fatalf("erased profile %v", p)
	}
}
