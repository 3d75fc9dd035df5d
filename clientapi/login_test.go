package clientapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

const loginPath = "/_matrix/client/v3/login"

func TestLoginFlows(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	m := doOK(t, s, "GET", loginPath, "", nil)
	flows, _ := m["flows"].([]any)
	if len(flows) != 1 || flows[0].(map[string]any)["type"] != "m.login.password" {
		t.Fatalf("flows %v", m)
	}
}

func TestLoginIdentifiers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, _ := s.RegisterUser(t, "alice")
	pw := servertest.TestPassword
	for _, c := range []struct {
		name string
		body map[string]any
	}{
		{"m.id.user localpart", map[string]any{"identifier": map[string]string{"type": "m.id.user", "user": "alice"}}},
		{"m.id.user full ID", map[string]any{"identifier": map[string]string{"type": "m.id.user", "user": userID}}},
		{"m.id.user other case", map[string]any{"identifier": map[string]string{"type": "m.id.user", "user": "ALICE"}}},
		{"legacy user field", map[string]any{"user": "alice"}},
		{"legacy user field, full ID", map[string]any{"user": userID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.body["type"], c.body["password"] = "m.login.password", pw
			m := doOK(t, s, "POST", loginPath, "", c.body)
			if m["user_id"] != userID || m["access_token"] == "" || m["device_id"] == "" || m["home_server"] != s.Name {
				t.Fatalf("login response %v", m)
			}
			if _, ok := m["refresh_token"]; ok {
				t.Fatalf("refresh token without asking: %v", m)
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	s.RegisterUser(t, "alice")
	pw := servertest.TestPassword
	id := func(user string) map[string]string { return map[string]string{"type": "m.id.user", "user": user} }
	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"wrong password", map[string]any{"type": "m.login.password", "identifier": id("alice"), "password": "nope"}, 403, "M_FORBIDDEN"},
		{"unknown user", map[string]any{"type": "m.login.password", "identifier": id("nobody"), "password": pw}, 403, "M_FORBIDDEN"},
		{"user of another server", map[string]any{"type": "m.login.password", "identifier": id("@alice:elsewhere.example"), "password": pw}, 403, "M_FORBIDDEN"},
		{"third-party identifier", map[string]any{"type": "m.login.password", "identifier": map[string]string{"type": "m.id.thirdparty", "medium": "email", "address": "a@example.org"}, "password": pw}, 403, "M_FORBIDDEN"},
		{"phone identifier", map[string]any{"type": "m.login.password", "identifier": map[string]string{"type": "m.id.phone", "country": "GB", "phone": "123"}, "password": pw}, 403, "M_FORBIDDEN"},
		{"legacy medium and address", map[string]any{"type": "m.login.password", "medium": "email", "address": "a@example.org", "password": pw}, 403, "M_FORBIDDEN"},
		{"unknown identifier type", map[string]any{"type": "m.login.password", "identifier": map[string]string{"type": "m.id.carrier_pigeon"}, "password": pw}, 400, "M_UNKNOWN"},
		{"identifier without user", map[string]any{"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user"}, "password": pw}, 400, "M_MISSING_PARAM"},
		{"identifier without type", map[string]any{"type": "m.login.password", "identifier": map[string]string{"user": "alice"}, "password": pw}, 400, "M_MISSING_PARAM"},
		{"no identifier", map[string]any{"type": "m.login.password", "password": pw}, 400, "M_MISSING_PARAM"},
		{"no password", map[string]any{"type": "m.login.password", "identifier": id("alice")}, 400, "M_MISSING_PARAM"},
		{"password not a string", map[string]any{"type": "m.login.password", "identifier": id("alice"), "password": 5}, 400, "M_BAD_JSON"},
		{"identifier not an object", map[string]any{"type": "m.login.password", "identifier": "alice", "password": pw}, 400, "M_BAD_JSON"},
		{"unknown login type", map[string]any{"type": "m.login.token", "token": "x"}, 400, "M_UNKNOWN"},
		{"no type", map[string]any{"identifier": id("alice"), "password": pw}, 400, "M_MISSING_PARAM"},
		{"type not a string", map[string]any{"type": 1}, 400, "M_BAD_JSON"},
		{"device_id not a string", map[string]any{"type": "m.login.password", "identifier": id("alice"), "password": pw, "device_id": 1}, 400, "M_BAD_JSON"},
		{"not JSON", "{", 400, "M_NOT_JSON"},
		{"array", "[1]", 400, "M_BAD_JSON"},
		{"oversized", `{"type":"m.login.password","password":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "M_TOO_LARGE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, raw := s.Do(t, "POST", loginPath, "", c.body)
			wantErr(t, st, raw, c.status, c.code)
		})
	}
	// None of those made a device.
	tok, _ := s.Login(t, "alice")
	ds := doOK(t, s, "GET", "/_matrix/client/v3/devices", tok, nil)["devices"].([]any)
	if len(ds) != 2 { // registration's and this login's
		t.Fatalf("%d devices after failed logins, want 2", len(ds))
	}
}

func TestLoginDeviceReuse(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	s.RegisterUser(t, "alice")
	login := func(extra map[string]any) map[string]any {
		body := map[string]any{"type": "m.login.password", "user": "alice", "password": servertest.TestPassword}
		for k, v := range extra {
			body[k] = v
		}
		return doOK(t, s, "POST", loginPath, "", body)
	}
	first := login(map[string]any{"device_id": "LAPTOP", "initial_device_display_name": "Laptop"})
	if first["device_id"] != "LAPTOP" {
		t.Fatalf("chosen device ID: %v", first)
	}
	second := login(map[string]any{"device_id": "LAPTOP", "initial_device_display_name": "Renamed?"})
	if second["device_id"] != "LAPTOP" || second["access_token"] == first["access_token"] {
		t.Fatalf("reused device: %v", second)
	}
	// The device's old session ended; its name stayed.
	st, raw := s.Do(t, "GET", "/_matrix/client/v3/account/whoami", first["access_token"].(string), nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	dev := doOK(t, s, "GET", "/_matrix/client/v3/devices/LAPTOP", second["access_token"].(string), nil)
	if dev["display_name"] != "Laptop" {
		t.Fatalf("device after reuse: %v", dev)
	}
	ds := doOK(t, s, "GET", "/_matrix/client/v3/devices", second["access_token"].(string), nil)["devices"].([]any)
	if len(ds) != 2 {
		t.Fatalf("%d devices, want 2 (registration, LAPTOP)", len(ds))
	}
}

func TestLogout(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, t1 := s.RegisterUser(t, "alice")
	t2, d2 := s.Login(t, "alice")
	t3, _ := s.Login(t, "alice")
	doOK(t, s, "POST", "/_matrix/client/v3/logout", t2, map[string]any{})
	st, raw := s.Do(t, "GET", "/_matrix/client/v3/account/whoami", t2, nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	// The device went with the token.
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/devices/"+d2, t1, nil)
	wantErr(t, st, raw, 404, "M_NOT_FOUND")
	doOK(t, s, "GET", "/_matrix/client/v3/account/whoami", t3, nil)

	doOK(t, s, "POST", "/_matrix/client/v3/logout/all", t3, nil)
	for _, tok := range []string{t1, t3} {
		st, raw := s.Do(t, "GET", "/_matrix/client/v3/account/whoami", tok, nil)
		wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	}
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/logout", "", nil)
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/logout/all", t3, nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	// Logging in again works.
	s.Login(t, "alice")
}

func TestRefreshTokens(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.RefreshableAccessTokenLifetime = "2s"
	}))[0]
	s.RegisterUser(t, "alice")
	m := doOK(t, s, "POST", loginPath, "", map[string]any{
		"type": "m.login.password", "user": "alice", "password": servertest.TestPassword, "refresh_token": true,
	})
	if m["expires_in_ms"] != 2000.0 {
		t.Fatalf("expires_in_ms %v", m["expires_in_ms"])
	}
	access1, refresh1 := m["access_token"].(string), m["refresh_token"].(string)
	device := m["device_id"].(string)
	doOK(t, s, "GET", "/_matrix/client/v3/account/whoami", access1, nil)

	refresh := func(tok string) (int, []byte) {
		return s.Do(t, "POST", "/_matrix/client/v3/refresh", "", map[string]string{"refresh_token": tok})
	}
	st, raw := refresh(refresh1)
	r2 := wantOK(t, st, raw)
	if r2["access_token"] == access1 || r2["refresh_token"] == refresh1 || r2["expires_in_ms"] != 2000.0 {
		t.Fatalf("refresh response %v", r2)
	}
	// Until the new tokens are used, the old refresh token still works (a
	// client that lost the answer retries).
	st, raw = refresh(refresh1)
	r3 := wantOK(t, st, raw)
	// Using the new access token spends the old refresh token.
	var who struct {
		DeviceID string `json:"device_id"`
	}
	s.DoJSON(t, "GET", "/_matrix/client/v3/account/whoami", r3["access_token"].(string), nil, &who)
	if who.DeviceID != device {
		t.Fatalf("refreshed token's device %q, want %q", who.DeviceID, device)
	}
	st, raw = refresh(refresh1)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	// r2's refresh token was a sibling of r3's: both superseded refresh1,
	// and using r2's spends nothing else.
	st, raw = refresh(r2["refresh_token"].(string))
	r4 := wantOK(t, st, raw)
	st, raw = refresh(r4["refresh_token"].(string)) // using r4's refresh token spends r2's
	wantOK(t, st, raw)
	st, raw = refresh(r2["refresh_token"].(string))
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")

	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{}, "M_MISSING_PARAM"},
		{map[string]any{"refresh_token": 5}, "M_BAD_JSON"},
		{"x", "M_NOT_JSON"},
	} {
		st, raw := s.Do(t, "POST", "/_matrix/client/v3/refresh", "", c.body)
		wantErr(t, st, raw, 400, c.code)
	}
	st, raw = refresh("mylr_unknown")
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	// Logout ends the refresh tokens too.
	other := doOK(t, s, "POST", loginPath, "", map[string]any{
		"type": "m.login.password", "user": "alice", "password": servertest.TestPassword, "refresh_token": true,
	})
	doOK(t, s, "POST", "/_matrix/client/v3/logout", r3["access_token"].(string), nil)
	st, raw = refresh(r3["refresh_token"].(string))
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")

	// Expired access tokens are a soft logout.
	time.Sleep(2100 * time.Millisecond)
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/account/whoami", other["access_token"].(string), nil)
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	var e struct {
		SoftLogout bool `json:"soft_logout"`
	}
	if json.Unmarshal(raw, &e); !e.SoftLogout {
		t.Fatalf("expired token: soft_logout should be true: %s", raw)
	}

}
