package clientapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// do sends a request and returns the status, headers and decoded JSON body.
func do(t *testing.T, c *http.Client, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json (body %q)", method, url, ct, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, raw, err)
	}
	return resp.StatusCode, resp.Header, m
}

func wantError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["errcode"] != wantCode {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, wantCode)
	}
	if msg, _ := body["error"].(string); msg == "" {
		t.Fatalf("error response %v has no error message", body)
	}
}

func TestVersions(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	status, _, body := do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/versions", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	versions, ok := body["versions"].([]any)
	if !ok {
		t.Fatalf("versions is %T (%v), want a JSON array", body["versions"], body["versions"])
	}
	// The core API is served up to v1.11, whose main change (media behind
	// authentication) the media repository serves.
	claimed := map[string]bool{}
	for _, v := range versions {
		claimed[v.(string)] = true
	}
	for _, want := range []string{"r0.6.1", "v1.1", "v1.10", "v1.11"} {
		if !claimed[want] {
			t.Errorf("versions %v lack %s", versions, want)
		}
	}
	_, tok := s.RegisterUser(t, "versions")
	if status, body := s.Do(t, "GET", "/_matrix/client/v1/media/config", tok, nil); status != http.StatusOK {
		t.Errorf("v1.11 is claimed but GET /_matrix/client/v1/media/config answers %d: %s", status, body)
	}
	if _, ok := body["unstable_features"].(map[string]any); !ok {
		t.Fatalf("unstable_features is %T, want a JSON object", body["unstable_features"])
	}
}

// TestLegacyR0 checks that /_matrix/client/r0/... reaches the v3 endpoint,
// with its path variables (including an escaped '/') and method rules.
func TestLegacyR0(t *testing.T) {
	probe := func(r *mux.Router) {
		r.HandleFunc("/_matrix/client/v3/myelin.test/echo/{id}", func(w http.ResponseWriter, req *http.Request) {
			httputil.WriteJSON(w, req, http.StatusOK, map[string]string{
				"id":    httputil.PathVar(req, "id"),
				"route": httputil.Route(req.Context()),
			})
		}).Methods(http.MethodGet)
	}
	s := servertest.Start(t, 1, servertest.WithServerOptions(server.WithClientRoutes(probe)))[0]

	for _, prefix := range []string{"v3", "r0"} {
		status, _, body := do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/"+prefix+"/myelin.test/echo/$a%2Fb:example.org", "")
		if status != http.StatusOK || body["id"] != "$a/b:example.org" || body["route"] != "/_matrix/client/v3/myelin.test/echo/{id}" {
			t.Fatalf("%s: got %d %v; want 200, id $a/b:example.org, the v3 route", prefix, status, body)
		}
		status, hdr, body := do(t, s.Client, "POST", s.ClientURL+"/_matrix/client/"+prefix+"/myelin.test/echo/x", "{}")
		wantError(t, status, body, http.StatusMethodNotAllowed, "M_UNRECOGNIZED")
		if allow := hdr.Get("Allow"); allow != "GET, OPTIONS" {
			t.Fatalf("%s: Allow %q, want \"GET, OPTIONS\"", prefix, allow)
		}
		status, _, body = do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/"+prefix+"/myelin.test/nothing", "")
		wantError(t, status, body, http.StatusNotFound, "M_UNRECOGNIZED")
	}
}

func TestCORS(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	check := func(h http.Header) {
		t.Helper()
		want := map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
			"Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
		}
		for k, v := range want {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
	}
	// A preflight, on an endpoint that exists and on one that does not:
	// the server answers OPTIONS itself, without running the endpoint.
	for _, path := range []string{"/_matrix/client/versions", "/_matrix/client/v3/rooms/!r:x/send/m.room.message/1"} {
		req, _ := http.NewRequest("OPTIONS", s.ClientURL+path, nil)
		req.Header.Set("Origin", "https://app.element.io")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("OPTIONS %s: status %d, want 200", path, resp.StatusCode)
		}
		check(resp.Header)
	}
	// And the headers are on ordinary responses, errors included.
	_, h, _ := do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/versions", "")
	check(h)
	_, h, _ = do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/v3/unknown", "")
	check(h)
}

func TestUnknownEndpointAndWrongMethod(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	status, _, body := do(t, s.Client, "GET", s.ClientURL+"/_matrix/client/v3/no_such_endpoint", "")
	wantError(t, status, body, http.StatusNotFound, "M_UNRECOGNIZED")
	status, _, body = do(t, s.Client, "GET", s.ClientURL+"/not/matrix/at/all", "")
	wantError(t, status, body, http.StatusNotFound, "M_UNRECOGNIZED")

	status, hdr, body := do(t, s.Client, "POST", s.ClientURL+"/_matrix/client/versions", "{}")
	wantError(t, status, body, http.StatusMethodNotAllowed, "M_UNRECOGNIZED")
	if allow := hdr.Get("Allow"); allow != "GET, OPTIONS" {
		t.Fatalf("Allow %q, want \"GET, OPTIONS\"", allow)
	}
}

func TestBodyTooLarge(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.MaxRequestBodyBytes = 65536
	}))[0]
	big := `{"x":"` + strings.Repeat("a", 70000) + `"}`
	status, _, body := do(t, s.Client, "PUT", s.ClientURL+"/_matrix/client/v3/rooms/!r:x/send/m.room.message/1", big)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
}

func TestWellKnownClient(t *testing.T) {
	servers := servertest.Start(t, 2, servertest.WithConfig(func(i int, cfg *config.Config) {
		if i == 0 {
			cfg.WellKnownClientBaseURL = "https://matrix.example.org"
		}
	}))
	status, h, body := do(t, servers[0].Client, "GET", servers[0].ClientURL+"/.well-known/matrix/client", "")
	hs, _ := body["m.homeserver"].(map[string]any)
	if status != http.StatusOK || hs["base_url"] != "https://matrix.example.org" {
		t.Fatalf("configured: got %d %v", status, body)
	}
	// Browsers fetch it cross-origin, so it needs the CORS headers.
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("no CORS header on the well-known response: %v", h)
	}
	status, _, body = do(t, servers[1].Client, "GET", servers[1].ClientURL+"/.well-known/matrix/client", "")
	wantError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
}
