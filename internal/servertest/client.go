package servertest

// Client API helpers for tests: JSON requests with an access token, and
// accounts made through the real /register endpoint.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Do sends a request to the client API and returns the status and the raw
// response body. path starts with "/" (e.g. "/_matrix/client/v3/sync");
// accessToken "" sends none. body is sent as is when it is a string,
// []byte or json.RawMessage, encoded as JSON otherwise, and omitted when
// nil. A transport error fails the test.
func (s *Server) Do(t testing.TB, method, path, accessToken string, body any) (status int, respBody []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("servertest: encode body of %s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.ClientURL+path, rd)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("servertest: %s %s: read the response: %v", method, path, err)
	}
	return resp.StatusCode, respBody
}

// DoJSON is Do that decodes a successful (2xx) JSON response into out (when
// out is not nil) and fails the test on any other status.
func (s *Server) DoJSON(t testing.TB, method, path, accessToken string, body, out any) {
	t.Helper()
	status, raw := s.Do(t, method, path, accessToken, body)
	if status/100 != 2 {
		t.Fatalf("servertest: %s %s: status %d: %s", method, path, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("servertest: %s %s: response %s: %v", method, path, raw, err)
		}
	}
}

// TestPassword is the password RegisterUser gives every account.
const TestPassword = "correct horse battery staple"

// RegisterUser creates the account localpart with TestPassword through
// POST /_matrix/client/v3/register (the two-step m.login.dummy flow; the
// test servers have open registration) and returns its user ID and an
// access token of a new device.
func (s *Server) RegisterUser(t testing.TB, localpart string) (userID, accessToken string) {
	t.Helper()
	req := map[string]any{"username": localpart, "password": TestPassword}
	status, raw := s.Do(t, http.MethodPost, "/_matrix/client/v3/register", "", req)
	var uia struct {
		Session string `json:"session"`
	}
	if status != http.StatusUnauthorized || json.Unmarshal(raw, &uia) != nil || uia.Session == "" {
		t.Fatalf("servertest: register %q: want a 401 with a UIA session, got %d: %s", localpart, status, raw)
	}
	req["auth"] = map[string]string{"type": "m.login.dummy", "session": uia.Session}
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/register", "", req, &resp)
	if resp.UserID == "" || resp.AccessToken == "" {
		t.Fatalf("servertest: register %q: no user_id or access_token in the response", localpart)
	}
	return resp.UserID, resp.AccessToken
}

// Login logs userID (or a localpart) in with TestPassword on a new device
// and returns the access token and the device ID.
func (s *Server) Login(t testing.TB, user string) (accessToken, deviceID string) {
	t.Helper()
	var resp struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": user},
		"password":   TestPassword,
	}, &resp)
	return resp.AccessToken, resp.DeviceID
}
