package clientapi_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const sharedSecretPath = "/_synapse/admin/v1/register"

// macFor computes the mac the way Synapse's register_new_matrix_user does.
func macFor(secret, nonce, user, password string, admin bool) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	m.Write([]byte{0})
	if admin {
		m.Write([]byte("admin"))
	} else {
		m.Write([]byte("notadmin"))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func nonce(t *testing.T, s *servertest.Server) string {
	t.Helper()
	m := doOK(t, s, "GET", sharedSecretPath, "", nil)
	n, _ := m["nonce"].(string)
	if n == "" {
		t.Fatalf("no nonce: %v", m)
	}
	return n
}

// sharedSecretRegister registers through the shared-secret API and returns
// the response.
func sharedSecretRegister(t *testing.T, s *servertest.Server, user, password string, admin bool, secret string) map[string]any {
	t.Helper()
	n := nonce(t, s)
	return doOK(t, s, "POST", sharedSecretPath, "", map[string]any{
		"nonce": n, "username": user, "password": password, "admin": admin,
		"mac": macFor(secret, n, user, password, admin),
	})
}

func TestSharedSecretRegistration(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(closedRegistration), servertest.WithConfig(withSecret))[0]
	m := sharedSecretRegister(t, s, "admin1", "pw", true, testSecret)
	if m["user_id"] != "@admin1:"+s.Name || m["access_token"] == "" || m["device_id"] == "" {
		t.Fatalf("response %v", m)
	}
	// The account is an admin: the admin API answers it.
	doOK(t, s, "GET", "/_synapse/admin/v1/registration_tokens", m["access_token"].(string), nil)
	// A plain user is not.
	u := sharedSecretRegister(t, s, "user1", "pw", false, testSecret)
	st, raw := s.Do(t, "GET", "/_synapse/admin/v1/registration_tokens", u["access_token"].(string), nil)
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	// The password works for /login.
	s.DoJSON(t, "POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "user1", "password": "pw"}, nil)

	post := func(body map[string]any) (int, []byte) { return s.Do(t, "POST", sharedSecretPath, "", body) }

	// A wrong mac is refused, and spends the nonce.
	n := nonce(t, s)
	st, raw = post(map[string]any{"nonce": n, "username": "bad1", "password": "pw", "mac": macFor("wrong", n, "bad1", "pw", false)})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	st, raw = post(map[string]any{"nonce": n, "username": "bad1", "password": "pw", "mac": macFor(testSecret, n, "bad1", "pw", false)})
	wantErr(t, st, raw, 400, "M_UNKNOWN")
	// The mac covers the admin flag.
	n = nonce(t, s)
	st, raw = post(map[string]any{"nonce": n, "username": "bad2", "password": "pw", "admin": true, "mac": macFor(testSecret, n, "bad2", "pw", false)})
	wantErr(t, st, raw, 403, "M_FORBIDDEN")
	// A used nonce cannot be replayed.
	n = nonce(t, s)
	body := map[string]any{"nonce": n, "username": "once", "password": "pw", "mac": macFor(testSecret, n, "once", "pw", false)}
	st, raw = post(body)
	wantOK(t, st, raw)
	body["username"], body["mac"] = "twice", macFor(testSecret, n, "twice", "pw", false)
	st, raw = post(body)
	wantErr(t, st, raw, 400, "M_UNKNOWN")
	// Bad input.
	n = nonce(t, s)
	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{"username": "x", "password": "pw", "mac": "00"}, 400, "M_MISSING_PARAM"},
		{map[string]any{"nonce": n, "password": "pw", "mac": "00"}, 400, "M_MISSING_PARAM"},
		{map[string]any{"nonce": n, "username": "x", "mac": "00"}, 400, "M_MISSING_PARAM"},
		{map[string]any{"nonce": n, "username": "x", "password": "pw"}, 400, "M_MISSING_PARAM"},
		{map[string]any{"nonce": 5, "username": "x", "password": "pw", "mac": "00"}, 400, "M_BAD_JSON"},
		{map[string]any{"nonce": "unknown", "username": "x", "password": "pw", "mac": "00"}, 400, "M_UNKNOWN"},
		{"{", 400, "M_NOT_JSON"},
	} {
		st, raw := s.Do(t, "POST", sharedSecretPath, "", c.body)
		wantErr(t, st, raw, c.status, c.code)
	}
	// Invalid and taken usernames.
	n = nonce(t, s)
	st, raw = post(map[string]any{"nonce": n, "username": "a b", "password": "pw", "mac": macFor(testSecret, n, "a b", "pw", false)})
	wantErr(t, st, raw, 400, "M_INVALID_USERNAME")
	n = nonce(t, s)
	st, raw = post(map[string]any{"nonce": n, "username": "user1", "password": "pw", "mac": macFor(testSecret, n, "user1", "pw", false)})
	wantErr(t, st, raw, 400, "M_USER_IN_USE")
}

func TestSharedSecretDisabled(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	st, raw := s.Do(t, "GET", sharedSecretPath, "", nil)
	wantErr(t, st, raw, 400, "M_UNKNOWN")
	st, raw = s.Do(t, "POST", sharedSecretPath, "", map[string]any{"nonce": "x", "username": "x", "password": "x", "mac": "00"})
	wantErr(t, st, raw, 400, "M_UNKNOWN")
}

func TestRegistrationTokenAdmin(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(withSecret))[0]
	admin := registerAdmin(t, s, "root")
	const base = "/_synapse/admin/v1/registration_tokens"

	// A random token, default length 16, unlimited, never expiring.
	m := doOK(t, s, "POST", base+"/new", admin, map[string]any{})
	random := m["token"].(string)
	if len(random) != 16 || m["uses_allowed"] != nil || m["expiry_time"] != nil || m["pending"] != 0.0 || m["completed"] != 0.0 {
		t.Fatalf("new random token %v", m)
	}
	m = doOK(t, s, "POST", base+"/new", admin, map[string]any{"length": 5})
	if len(m["token"].(string)) != 5 {
		t.Fatalf("length 5: %v", m)
	}
	future := time.Now().Add(time.Hour).UnixMilli()
	m = doOK(t, s, "POST", base+"/new", admin, map[string]any{"token": "abc.DEF_~-1", "uses_allowed": 3, "expiry_time": future})
	if m["token"] != "abc.DEF_~-1" || m["uses_allowed"] != 3.0 || m["expiry_time"] != float64(future) {
		t.Fatalf("chosen token %v", m)
	}
	// Errors.
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"token": "abc.DEF_~-1"}, "M_INVALID_PARAM"}, // exists
		{map[string]any{"token": "has space"}, "M_INVALID_PARAM"},
		{map[string]any{"token": ""}, "M_INVALID_PARAM"},
		{map[string]any{"token": string(make([]byte, 65))}, "M_INVALID_PARAM"},
		{map[string]any{"uses_allowed": -1}, "M_INVALID_PARAM"},
		{map[string]any{"uses_allowed": 1.5}, "M_INVALID_PARAM"},
		{map[string]any{"uses_allowed": "3"}, "M_INVALID_PARAM"},
		{map[string]any{"expiry_time": 1000}, "M_INVALID_PARAM"}, // in the past
		{map[string]any{"length": 0}, "M_INVALID_PARAM"},
		{map[string]any{"length": 65}, "M_INVALID_PARAM"},
		{map[string]any{"token": 5}, "M_BAD_JSON"},
		{"nope", "M_NOT_JSON"},
	} {
		st, raw := s.Do(t, "POST", base+"/new", admin, c.body)
		wantErr(t, st, raw, 400, c.code)
	}

	list := doOK(t, s, "GET", base, admin, nil)
	if n := len(list["registration_tokens"].([]any)); n != 3 {
		t.Fatalf("%d tokens listed, want 3: %v", n, list)
	}
	// Update: uses_allowed 0 makes the token invalid; expiry unchanged.
	m = doOK(t, s, "PUT", base+"/abc.DEF_~-1", admin, map[string]any{"uses_allowed": 0})
	if m["uses_allowed"] != 0.0 || m["expiry_time"] != float64(future) {
		t.Fatalf("after update %v", m)
	}
	valid := doOK(t, s, "GET", base+"?valid=true", admin, nil)["registration_tokens"].([]any)
	invalid := doOK(t, s, "GET", base+"?valid=false", admin, nil)["registration_tokens"].([]any)
	if len(valid) != 2 || len(invalid) != 1 || invalid[0].(map[string]any)["token"] != "abc.DEF_~-1" {
		t.Fatalf("valid %v invalid %v", valid, invalid)
	}
	st, raw := s.Do(t, "GET", base+"?valid=maybe", admin, nil)
	wantErr(t, st, raw, 400, "M_INVALID_PARAM")
	// null clears the limits.
	m = doOK(t, s, "PUT", base+"/abc.DEF_~-1", admin, map[string]any{"uses_allowed": nil, "expiry_time": nil})
	if m["uses_allowed"] != nil || m["expiry_time"] != nil {
		t.Fatalf("after clearing %v", m)
	}
	st, raw = s.Do(t, "PUT", base+"/abc.DEF_~-1", admin, map[string]any{"expiry_time": 5})
	wantErr(t, st, raw, 400, "M_INVALID_PARAM")
	// Delete.
	doOK(t, s, "DELETE", base+"/"+random, admin, nil)
	for _, method := range []string{"GET", "DELETE"} {
		st, raw := s.Do(t, method, base+"/"+random, admin, nil)
		wantErr(t, st, raw, 404, "M_NOT_FOUND")
	}
	st, raw = s.Do(t, "PUT", base+"/"+random, admin, map[string]any{"uses_allowed": 1})
	wantErr(t, st, raw, 404, "M_NOT_FOUND")

	// Only admins, only with a token.
	_, user := s.RegisterUser(t, "pleb")
	for _, method := range []string{"GET", "POST"} {
		path := base
		if method == "POST" {
			path += "/new"
		}
		st, raw := s.Do(t, method, path, user, map[string]any{})
		wantErr(t, st, raw, 403, "M_FORBIDDEN")
		st, raw = s.Do(t, method, path, "", map[string]any{})
		wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	}
}
