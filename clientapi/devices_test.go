package clientapi_test

import (
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestDevices(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, tok := s.RegisterUser(t, "alice")
	doOK(t, s, "POST", loginPath, "", map[string]any{"type": "m.login.password", "user": "alice",
		"password": servertest.TestPassword, "device_id": "PHONE", "initial_device_display_name": "Phone"})
	_, bobTok := s.RegisterUser(t, "bob")
	doOK(t, s, "GET", whoamiPath, tok, nil) // makes the device "seen"

	ds := doOK(t, s, "GET", "/_matrix/client/v3/devices", tok, nil)["devices"].([]any)
	if len(ds) != 2 {
		t.Fatalf("devices %v", ds)
	}
	phone := doOK(t, s, "GET", "/_matrix/client/v3/devices/PHONE", tok, nil)
	if phone["device_id"] != "PHONE" || phone["display_name"] != "Phone" {
		t.Fatalf("device %v", phone)
	}
	// Rename.
	doOK(t, s, "PUT", "/_matrix/client/v3/devices/PHONE", tok, map[string]any{"display_name": "Old phone"})
	if d := doOK(t, s, "GET", "/_matrix/client/v3/devices/PHONE", tok, nil); d["display_name"] != "Old phone" {
		t.Fatalf("renamed %v", d)
	}
	doOK(t, s, "PUT", "/_matrix/client/v3/devices/PHONE", tok, map[string]any{})
	if d := doOK(t, s, "GET", "/_matrix/client/v3/devices/PHONE", tok, nil); d["display_name"] != "Old phone" {
		t.Fatalf("an empty PUT changed the name: %v", d)
	}
	// Another user's device is not found, for any method.
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		st, raw := s.Do(t, method, "/_matrix/client/v3/devices/PHONE", bobTok, map[string]any{})
		wantErr(t, st, raw, 404, "M_NOT_FOUND")
	}
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"PUT", "/_matrix/client/v3/devices/PHONE", map[string]any{"display_name": 1}, 400, "M_BAD_JSON"},
		{"PUT", "/_matrix/client/v3/devices/PHONE", map[string]any{"display_name": strings.Repeat("x", 101)}, 400, "M_INVALID_PARAM"},
		{"PUT", "/_matrix/client/v3/devices/PHONE", "{", 400, "M_NOT_JSON"},
		{"POST", "/_matrix/client/v3/delete_devices", map[string]any{}, 400, "M_MISSING_PARAM"},
		{"POST", "/_matrix/client/v3/delete_devices", map[string]any{"devices": "PHONE"}, 400, "M_BAD_JSON"},
		{"GET", "/_matrix/client/v3/devices", nil, 401, "M_MISSING_TOKEN"},
	} {
		token := tok
		if c.status == 401 {
			token = ""
		}
		st, raw := s.Do(t, c.method, c.path, token, c.body)
		wantErr(t, st, raw, c.status, c.code)
	}

	// Delete one device: UIA, with no body on the first request.
	st, raw := s.Do(t, "DELETE", "/_matrix/client/v3/devices/PHONE", tok, nil)
	u := wantUIA(t, st, raw, "")
	// The session is bound to PHONE: it cannot delete another device.
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/delete_devices", tok, map[string]any{
		"devices": []string{"OTHER"}, "auth": passwordAuth(u.Session, userID, servertest.TestPassword)})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	st, raw = s.Do(t, "DELETE", "/_matrix/client/v3/devices/PHONE", tok, map[string]any{"auth": passwordAuth(u.Session, userID, "wrong")})
	wantUIA(t, st, raw, "M_FORBIDDEN")
	doOK(t, s, "DELETE", "/_matrix/client/v3/devices/PHONE", tok, map[string]any{"auth": passwordAuth(u.Session, userID, servertest.TestPassword)})
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/devices/PHONE", tok, nil)
	wantErr(t, st, raw, 404, "M_NOT_FOUND")
	st, raw = s.Do(t, "DELETE", "/_matrix/client/v3/devices/PHONE", tok, nil)
	wantErr(t, st, raw, 404, "M_NOT_FOUND")

	// delete_devices: several at once, unknown IDs ignored; a deleted
	// device's token stops working.
	t2, d2 := s.Login(t, "alice")
	_, d3 := s.Login(t, "alice")
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/delete_devices", tok, map[string]any{"devices": []string{d2, d3, "NOSUCH"}})
	u = wantUIA(t, st, raw, "")
	doOK(t, s, "POST", "/_matrix/client/v3/delete_devices", tok, map[string]any{
		"devices": []string{d2, d3, "NOSUCH"}, "auth": passwordAuth(u.Session, "alice", servertest.TestPassword)})
	st, raw = s.Do(t, "GET", whoamiPath, t2, nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	ds = doOK(t, s, "GET", "/_matrix/client/v3/devices", tok, nil)["devices"].([]any)
	if len(ds) != 1 {
		t.Fatalf("devices left %v", ds)
	}
	if d := ds[0].(map[string]any); d["last_seen_ts"] == nil || d["last_seen_ip"] != "127.0.0.1" {
		t.Fatalf("the used device has no last seen: %v", d)
	}
	// A replayed session is refused.
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/delete_devices", tok, map[string]any{
		"devices": []string{d2, d3, "NOSUCH"}, "auth": passwordAuth(u.Session, "alice", servertest.TestPassword)})
	wantErr(t, st, raw, 400, "M_UNKNOWN")
}
