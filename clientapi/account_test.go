package clientapi_test

// Helpers for the account tests (register, login, devices, profile, ...),
// and the smoke test of the servertest helpers other engineers rely on.

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// errBody is a Matrix error response.
type errBody struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// wantErr checks that a response is the Matrix error wantCode with status
// wantStatus and a message.
func wantErr(t *testing.T, status int, raw []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(raw, &e); err != nil || status != wantStatus || e.Errcode != wantCode || e.Error == "" {
		t.Fatalf("got %d %s, want %d %s with a message", status, raw, wantStatus, wantCode)
	}
}

// wantOK checks a 200 and decodes the body into a map.
func wantOK(t *testing.T, status int, raw []byte) map[string]any {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("got %d %s, want 200", status, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %s: %v", raw, err)
	}
	return m
}

// doOK sends a request that must succeed with 200 and returns the body.
func doOK(t *testing.T, s *servertest.Server, method, path, token string, body any) map[string]any {
	t.Helper()
	st, raw := s.Do(t, method, path, token, body)
	return wantOK(t, st, raw)
}

// uiaResponse is the 401 of user-interactive auth.
type uiaResponse struct {
	Flows []struct {
		Stages []string `json:"stages"`
	} `json:"flows"`
	Params    map[string]any `json:"params"`
	Session   string         `json:"session"`
	Completed []string       `json:"completed"`
	Errcode   string         `json:"errcode"`
	Error     string         `json:"error"`
}

// wantUIA checks a UIA 401 (with errcode wantCode, "" for none) and returns
// it.
func wantUIA(t *testing.T, status int, raw []byte, wantCode string) uiaResponse {
	t.Helper()
	var u uiaResponse
	if err := json.Unmarshal(raw, &u); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("got %d %s, want a UIA 401", status, raw)
	}
	if u.Session == "" || len(u.Flows) == 0 || u.Params == nil || u.Completed == nil || u.Errcode != wantCode {
		t.Fatalf("UIA response %s: want session, flows, params, completed and errcode %q", raw, wantCode)
	}
	if wantCode != "" && u.Error == "" {
		t.Fatalf("UIA response %s has an errcode but no error", raw)
	}
	return u
}

// passwordAuth is the m.login.password UIA stage for userID.
func passwordAuth(session, userID, password string) map[string]any {
	return map[string]any{
		"type":       "m.login.password",
		"session":    session,
		"identifier": map[string]string{"type": "m.id.user", "user": userID},
		"password":   password,
	}
}

// closedRegistration configures servers without open registration.
func closedRegistration(_ int, cfg *config.Config) { cfg.OpenRegistration = false }

// sharedSecret configures servers with a registration shared secret.
const testSecret = "s3cret"

func withSecret(_ int, cfg *config.Config) { cfg.RegistrationSharedSecret = testSecret }

func TestRegisterUserAndWhoami(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	userID, token := s.RegisterUser(t, "alice")
	if userID != "@alice:"+s.Name {
		t.Fatalf("user ID %q", userID)
	}
	var who struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
		IsGuest  *bool  `json:"is_guest"`
	}
	s.DoJSON(t, "GET", "/_matrix/client/v3/account/whoami", token, nil, &who)
	if who.UserID != userID || who.DeviceID == "" || who.IsGuest == nil || *who.IsGuest {
		t.Fatalf("whoami %+v", who)
	}
	token2, dev2 := s.Login(t, "alice")
	if token2 == token || dev2 == who.DeviceID {
		t.Fatalf("login reused the token or device")
	}
	// The r0 prefix reaches the same endpoint.
	s.DoJSON(t, "GET", "/_matrix/client/r0/account/whoami", token2, nil, &who)
	if who.DeviceID != dev2 {
		t.Fatalf("r0 whoami %+v", who)
	}
}

// TestAccessTokenPlaces checks where the access token may be and the 401s
// of a missing, malformed or unknown one.
func TestAccessTokenPlaces(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	_, token := s.RegisterUser(t, "alice")
	get := func(path string, header string) (int, []byte) {
		req, _ := http.NewRequest("GET", s.ClientURL+path, nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		json.NewDecoder(resp.Body).Decode(&raw)
		return resp.StatusCode, raw
	}
	const whoami = "/_matrix/client/v3/account/whoami"
	if st, raw := get(whoami+"?access_token="+token, ""); st != 200 {
		t.Fatalf("query token: %d %s", st, raw)
	}
	if st, raw := get(whoami, "bearer "+token); st != 200 {
		t.Fatalf("lower-case scheme: %d %s", st, raw)
	}
	st, raw := get(whoami, "")
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	st, raw = get(whoami, "Basic abc")
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	st, raw = get(whoami+"?access_token="+token, "Bearer "+token)
	wantErr(t, st, raw, 401, "M_MISSING_TOKEN")
	st, raw = get(whoami, "Bearer nonsense")
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
	var e struct {
		SoftLogout *bool `json:"soft_logout"`
	}
	if json.Unmarshal(raw, &e); e.SoftLogout == nil || *e.SoftLogout {
		t.Fatalf("unknown token: soft_logout should be false: %s", raw)
	}
	st, raw = get(whoami+"?access_token=nonsense", "")
	wantErr(t, st, raw, 401, "M_UNKNOWN_TOKEN")
}
