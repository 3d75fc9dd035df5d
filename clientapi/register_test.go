package clientapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

const registerPath = "/_matrix/client/v3/register"

// available reports whether GET /register/available says localpart is free.
func available(t *testing.T, s *servertest.Server, localpart string) bool {
	t.Helper()
	st, raw := s.Do(t, "GET", "/_matrix/client/v3/register/available?username="+localpart, "", nil)
	if st == 200 {
		return true
	}
	wantErr(t, st, raw, 400, "M_USER_IN_USE")
	return false
}

func TestRegisterTwoStepDummy(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	body := map[string]any{"username": "Bob", "password": "pw-bob-1", "initial_device_display_name": "Bob's phone"}
	st, raw := s.Do(t, "POST", registerPath, "", body)
	u := wantUIA(t, st, raw, "")
	if len(u.Flows) != 2 || u.Flows[0].Stages[0] != "m.login.dummy" || u.Flows[1].Stages[0] != "m.login.registration_token" {
		t.Fatalf("open registration flows: %s", raw)
	}
	if len(u.Completed) != 0 {
		t.Fatalf("completed %v before any stage", u.Completed)
	}
	if !available(t, s, "bob") {
		t.Fatal("the first step created the account")
	}
	body["auth"] = map[string]string{"type": "m.login.dummy", "session": u.Session}
	m := doOK(t, s, "POST", registerPath, "", body)
	// Usernames are lowercased, as Synapse does.
	if m["user_id"] != "@bob:"+s.Name || m["access_token"] == "" || m["device_id"] == "" || m["home_server"] != s.Name {
		t.Fatalf("register response %v", m)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Fatalf("a refresh token without asking: %v", m)
	}
	if available(t, s, "bob") {
		t.Fatal("bob still available after registering")
	}
	tok := m["access_token"].(string)
	dev := doOK(t, s, "GET", "/_matrix/client/v3/devices/"+m["device_id"].(string), tok, nil)
	if dev["display_name"] != "Bob's phone" {
		t.Fatalf("device %v", dev)
	}
	// The display name starts as the localpart.
	prof := doOK(t, s, "GET", "/_matrix/client/v3/profile/@bob:"+s.Name, "", nil)
	if prof["displayname"] != "bob" {
		t.Fatalf("profile %v", prof)
	}

	// The session is spent: a replay is refused and creates nothing.
	body["username"] = "bob2"
	st, raw = s.Do(t, "POST", registerPath, "", body)
	wantErr(t, st, raw, 400, "M_UNKNOWN")
	if !available(t, s, "bob2") {
		t.Fatal("the replayed session created an account")
	}
}

// TestRegisterOneStep: a client may do the dummy stage without asking for a
// session first, and choose its device ID.
func TestRegisterOneStep(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	m := doOK(t, s, "POST", registerPath, "", map[string]any{
		"username": "carol", "password": "pw", "device_id": "CAROLDEV",
		"auth": map[string]string{"type": "m.login.dummy"},
	})
	if m["device_id"] != "CAROLDEV" {
		t.Fatalf("device %v", m["device_id"])
	}
	// No username: the server picks one.
	m = doOK(t, s, "POST", registerPath, "", map[string]any{
		"password": "pw", "auth": map[string]string{"type": "m.login.dummy"},
	})
	uid, _ := m["user_id"].(string)
	if !strings.HasPrefix(uid, "@") || !strings.HasSuffix(uid, ":"+s.Name) {
		t.Fatalf("generated user ID %q", uid)
	}
}

func TestRegisterInhibitLoginAndRefresh(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	m := doOK(t, s, "POST", registerPath, "", map[string]any{
		"username": "dave", "password": servertest.TestPassword, "inhibit_login": true,
		"auth": map[string]string{"type": "m.login.dummy"},
	})
	if m["user_id"] != "@dave:"+s.Name {
		t.Fatalf("response %v", m)
	}
	for _, k := range []string{"access_token", "device_id", "refresh_token"} {
		if _, ok := m[k]; ok {
			t.Fatalf("inhibit_login response has %s: %v", k, m)
		}
	}
	// Nothing logged in: the account has no device, but can log in.
	tok, _ := s.Login(t, "dave")
	ds := doOK(t, s, "GET", "/_matrix/client/v3/devices", tok, nil)
	if n := len(ds["devices"].([]any)); n != 1 {
		t.Fatalf("%d devices, want only the login's", n)
	}

	m = doOK(t, s, "POST", registerPath, "", map[string]any{
		"username": "erin", "password": "pw", "refresh_token": true,
		"auth": map[string]string{"type": "m.login.dummy"},
	})
	if m["refresh_token"] == nil || m["expires_in_ms"] == nil {
		t.Fatalf("refresh_token asked for: %v", m)
	}
	if ms := m["expires_in_ms"].(float64); ms != 5*60*1000 {
		t.Fatalf("expires_in_ms %v, want the default 5 minutes", ms)
	}
}

func TestRegisterBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	dummy := map[string]string{"type": "m.login.dummy"}
	s.RegisterUser(t, "taken")
	cases := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"not JSON", registerPath, "{username", 400, "M_NOT_JSON"},
		{"empty body", registerPath, "", 400, "M_NOT_JSON"},
		{"array", registerPath, "[]", 400, "M_BAD_JSON"},
		{"username not a string", registerPath, map[string]any{"username": 5, "password": "pw", "auth": dummy}, 400, "M_BAD_JSON"},
		{"inhibit_login not a boolean", registerPath, map[string]any{"username": "x1", "password": "pw", "inhibit_login": "yes", "auth": dummy}, 400, "M_BAD_JSON"},
		{"auth not an object", registerPath, map[string]any{"username": "x2", "password": "pw", "auth": "dummy"}, 400, "M_BAD_JSON"},
		{"invalid characters", registerPath, map[string]any{"username": "a b", "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"colon", registerPath, map[string]any{"username": "a:b", "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"leading underscore", registerPath, map[string]any{"username": "_bridge", "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"numeric", registerPath, map[string]any{"username": "12345", "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"empty username", registerPath, map[string]any{"username": "", "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"too long", registerPath, map[string]any{"username": strings.Repeat("a", 250), "password": "pw", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"taken", registerPath, map[string]any{"username": "taken", "password": "pw", "auth": dummy}, 400, "M_USER_IN_USE"},
		{"taken, other case", registerPath, map[string]any{"username": "TAKEN", "password": "pw"}, 400, "M_USER_IN_USE"},
		{"no password", registerPath, map[string]any{"username": "x3", "auth": dummy}, 400, "M_MISSING_PARAM"},
		{"password too long", registerPath, map[string]any{"username": "x4", "password": strings.Repeat("p", 513), "auth": dummy}, 400, "M_INVALID_PARAM"},
		{"guest", registerPath + "?kind=guest", map[string]any{}, 403, "M_FORBIDDEN"},
		{"unknown kind", registerPath + "?kind=robot", map[string]any{}, 400, "M_INVALID_PARAM"},
		{"unknown session", registerPath, map[string]any{"username": "x5", "password": "pw", "auth": map[string]string{"type": "m.login.dummy", "session": "nope"}}, 400, "M_UNKNOWN"},
		{"device ID too long", registerPath, map[string]any{"username": "x6", "password": "pw", "device_id": strings.Repeat("D", 513), "auth": dummy}, 400, "M_INVALID_PARAM"},
		{"oversized body", registerPath, `{"username":"x7","password":"` + strings.Repeat("p", 2<<20) + `"}`, 413, "M_TOO_LARGE"},
		{"available: invalid", "/_matrix/client/v3/register/available?username=a%20b", nil, 400, "M_INVALID_USERNAME"},
		{"available: no username", "/_matrix/client/v3/register/available", nil, 400, "M_MISSING_PARAM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if c.body == nil {
				method = "GET"
			}
			st, raw := s.Do(t, method, c.path, "", c.body)
			wantErr(t, st, raw, c.status, c.code)
		})
	}
	for _, lp := range []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"} {
		if !available(t, s, lp) {
			t.Errorf("a refused registration created %s", lp)
		}
	}
	// A stage the server does not offer is a 401 naming the problem.
	st, raw := s.Do(t, "POST", registerPath, "", map[string]any{"username": "x8", "password": "pw",
		"auth": map[string]string{"type": "m.login.recaptcha"}})
	wantUIA(t, st, raw, "M_UNRECOGNIZED")
	// The UIA session of a password change cannot register.
	_, tok := s.RegisterUser(t, "frank")
	st, raw = s.Do(t, "POST", "/_matrix/client/v3/account/password", tok, map[string]any{"new_password": "x"})
	u := wantUIA(t, st, raw, "")
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "x9", "password": "pw",
		"auth": map[string]string{"type": "m.login.dummy", "session": u.Session}})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
}

func TestRegisterClosed(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(closedRegistration), servertest.WithConfig(withSecret))[0]
	// No token exists: registration is simply disabled.
	st, raw := s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw"})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw",
		"auth": map[string]string{"type": "m.login.dummy"}})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	// Nor does it say which usernames exist.
	st, raw = s.Do(t, "GET", "/_matrix/client/v3/register/available?username=zed", "", nil)
	wantErr(t, st, raw, 403, "M_FORBIDDEN")

	// With a token, the only flow is the token.
	admin := registerAdmin(t, s, "root")
	tok := doOK(t, s, "POST", "/_synapse/admin/v1/registration_tokens/new", admin, map[string]any{"uses_allowed": 1})
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw"})
	u := wantUIA(t, st, raw, "")
	if len(u.Flows) != 1 || len(u.Flows[0].Stages) != 1 || u.Flows[0].Stages[0] != "m.login.registration_token" {
		t.Fatalf("closed registration flows: %s", raw)
	}
	// The dummy stage is not offered.
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw",
		"auth": map[string]string{"type": "m.login.dummy", "session": u.Session}})
	wantUIA(t, st, raw, "M_UNRECOGNIZED")
	// A wrong token fails the stage; the session goes on.
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw",
		"auth": map[string]string{"type": "m.login.registration_token", "token": "wrong", "session": u.Session}})
	if u2 := wantUIA(t, st, raw, "M_UNAUTHORIZED"); u2.Session != u.Session || len(u2.Completed) != 0 {
		t.Fatalf("after a wrong token: %s", raw)
	}
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw",
		"auth": map[string]any{"type": "m.login.registration_token", "token": 7, "session": u.Session}})
	wantUIA(t, st, raw, "M_BAD_JSON")
	m := doOK(t, s, "POST", registerPath, "", map[string]any{"username": "zed", "password": "pw",
		"auth": map[string]string{"type": "m.login.registration_token", "token": tok["token"].(string), "session": u.Session}})
	if m["user_id"] != "@zed:"+s.Name {
		t.Fatalf("register with token: %v", m)
	}
	got := doOK(t, s, "GET", "/_synapse/admin/v1/registration_tokens/"+tok["token"].(string), admin, nil)
	if got["completed"] != 1.0 || got["pending"] != 0.0 {
		t.Fatalf("token after one registration: %v", got)
	}
	// Its one use is spent.
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "zed2", "password": "pw",
		"auth": map[string]string{"type": "m.login.registration_token", "token": tok["token"].(string)}})
	wantUIA(t, st, raw, "M_UNAUTHORIZED")
	if !available(t, s, "zed2") {
		t.Fatal("a spent token registered an account")
	}
}

// TestRegistrationTokenPending: a session that passed the token stage holds
// a use, so a one-use token cannot start two registrations at once; the
// validity endpoint follows.
func TestRegistrationTokenPending(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(closedRegistration), servertest.WithConfig(withSecret))[0]
	admin := registerAdmin(t, s, "root")
	doOK(t, s, "POST", "/_synapse/admin/v1/registration_tokens/new", admin, map[string]any{"token": "once", "uses_allowed": 1})
	validity := func(tok string) bool {
		m := doOK(t, s, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+tok, "", nil)
		return m["valid"].(bool)
	}
	if !validity("once") || validity("never-made") {
		t.Fatal("validity before use")
	}
	st, raw := s.Do(t, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity", "", nil)
	wantErr(t, st, raw, 400, "M_MISSING_PARAM")

	// A client whose flow needs more than the token stage is not possible
	// here, so hold the use with a registration that fails after auth: the
	// password is missing, and the session stays open.
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "p1",
		"auth": map[string]string{"type": "m.login.registration_token", "token": "once"}})
	wantErr(t, st, raw, 400, "M_MISSING_PARAM")
	got := doOK(t, s, "GET", "/_synapse/admin/v1/registration_tokens/once", admin, nil)
	if got["pending"] != 1.0 || got["completed"] != 0.0 {
		t.Fatalf("token after a pending registration: %v", got)
	}
	if validity("once") {
		t.Fatal("a token whose only use is pending is still valid")
	}
	st, raw = s.Do(t, "POST", registerPath, "", map[string]any{"username": "p2", "password": "pw",
		"auth": map[string]string{"type": "m.login.registration_token", "token": "once"}})
	wantUIA(t, st, raw, "M_UNAUTHORIZED")
}

// registerAdmin makes an admin account through shared-secret registration
// (the server must have testSecret) and returns its access token.
func registerAdmin(t *testing.T, s *servertest.Server, localpart string) string {
	t.Helper()
	m := sharedSecretRegister(t, s, localpart, "adminpw", true, testSecret)
	return m["access_token"].(string)
}

func TestRegisterOpenConfigDefault(t *testing.T) {
	// The defaults keep registration closed.
	if config.Default().OpenRegistration {
		t.Fatal("open_registration defaults to true")
	}
	s := servertest.Start(t, 1, servertest.WithConfig(closedRegistration))[0]
	st, raw := s.Do(t, "POST", registerPath, "", map[string]any{"username": "x", "password": "pw"})
	wantErr(t, st, raw, http.StatusForbidden, "M_FORBIDDEN")
}
