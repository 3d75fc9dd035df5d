package federation_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/internal/tlsutil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawFed sends a GET to a server's federation API with the given
// Authorization headers (none: unsigned) and returns the status and body.
func rawFed(t *testing.T, s *servertest.Server, path string, auth ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, s.FederationURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := s.FedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func wantErr(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e struct{ Errcode, Error string }
	if err := json.Unmarshal(body, &e); err != nil || status != wantStatus || e.Errcode != wantCode {
		t.Fatalf("%s: got %d %s, want %d %s", what, status, body, wantStatus, wantCode)
	}
}

// sign makes the X-Matrix header of a GET of path to dest, as origin with
// the given key.
func sign(t *testing.T, path, origin, dest, keyID string, key ed25519.PrivateKey) fedauth.Header {
	t.Helper()
	h, err := fedauth.Sign(http.MethodGet, path, origin, dest, nil, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSignedProfileQuery(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	alice, token := b.RegisterUser(t, "alice")
	b.DoJSON(t, http.MethodPut, "/_matrix/client/v3/profile/"+url.PathEscape(alice)+"/displayname", token, map[string]string{"displayname": "Alice"}, nil)
	b.DoJSON(t, http.MethodPut, "/_matrix/client/v3/profile/"+url.PathEscape(alice)+"/m.tz", token, map[string]string{"m.tz": "Europe/Paris"}, nil)
	query := func(params string) string { return "/_matrix/federation/v1/query/profile?" + params }
	userParam := "user_id=" + url.QueryEscape(alice)

	// A asks B, signing with its key: B fetches A's key and accepts.
	var profile map[string]any
	if err := a.SignedFederationClient().DoJSON(ctxT(t), http.MethodGet, b.Name, query(userParam), nil, &profile); err != nil {
		t.Fatal(err)
	}
	if profile["displayname"] != "Alice" || profile["m.tz"] != "Europe/Paris" || len(profile) != 2 {
		t.Fatalf("profile %v", profile)
	}
	profile = nil
	if err := a.SignedFederationClient().DoJSON(ctxT(t), http.MethodGet, b.Name, query(userParam+"&field=displayname"), nil, &profile); err != nil {
		t.Fatal(err)
	}
	if len(profile) != 1 || profile["displayname"] != "Alice" {
		t.Fatalf("one field: %v", profile)
	}

	// The endpoint's own errors, over signed requests.
	for _, c := range []struct {
		params, code string
		status       int
	}{
		{userParam + "&field=avatar_url", "M_NOT_FOUND", 404},
		{"user_id=" + url.QueryEscape("@nobody:"+b.Name), "M_NOT_FOUND", 404},
		{"user_id=" + url.QueryEscape("@alice:"+a.Name), "M_INVALID_PARAM", 400},
		{"user_id=alice", "M_INVALID_PARAM", 400},
		{"", "M_MISSING_PARAM", 400},
	} {
		err := a.SignedFederationClient().DoJSON(ctxT(t), http.MethodGet, b.Name, query(c.params), nil, nil)
		var fe *fedclient.Error
		if !errors.As(err, &fe) || fe.Status != c.status || fe.Code != c.code {
			t.Fatalf("query %q: %v, want %d %s", c.params, err, c.status, c.code)
		}
	}
}

func TestRequestAuthentication(t *testing.T) {
	servers := servertest.Start(t, 3)
	a, b, c := servers[0], servers[1], servers[2]
	b.RegisterUser(t, "bob")
	path := "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape("@bob:"+b.Name)
	keyID, key := a.Keys().Current()
	good := sign(t, path, a.Name, b.Name, keyID, key)

	if status, body := rawFed(t, b, path, good.String()); status != 200 {
		t.Fatalf("a correctly signed request: %d %s", status, body)
	}
	// Compatibility forms: no destination (servers before Matrix 1.3),
	// unquoted values, other case, other order, extra parameters and a
	// Bearer header beside it.
	noDest := sign(t, path, a.Name, b.Name, keyID, key)
	compat := []string{
		`X-Matrix origin="` + a.Name + `",key="` + keyID + `",sig="` + noDest.Sig + `"`,
		"x-matrix  SIG=" + good.Sig + " , Key=" + keyID + ",origin=" + a.Name + ",destination=" + b.Name + ",future=1",
	}
	for _, h := range compat {
		if status, body := rawFed(t, b, path, h); status != 200 {
			t.Fatalf("header %q: %d %s", h, status, body)
		}
	}
	if status, body := rawFed(t, b, path, "Bearer sometoken", good.String()); status != 200 {
		t.Fatalf("with a Bearer header too: %d %s", status, body)
	}

	// Another server (C) signing as itself is accepted too: B fetches C's
	// key on first sight.
	cKeyID, cKey := c.Keys().Current()
	if status, body := rawFed(t, b, path, sign(t, path, c.Name, b.Name, cKeyID, cKey).String()); status != 200 {
		t.Fatalf("request from C: %d %s", status, body)
	}

	_, stranger, _ := ed25519.GenerateKey(nil)
	forged := sign(t, path, a.Name, b.Name, keyID, stranger)
	otherPath := sign(t, path+"&x=1", a.Name, b.Name, keyID, key)
	wrongDest := sign(t, path, a.Name, c.Name, keyID, key)
	unknownKey := sign(t, path, a.Name, b.Name, "ed25519:unknown", key)
	asC := sign(t, path, c.Name, b.Name, keyID, key) // A's key, claiming to be C
	for _, tc := range []struct {
		name string
		auth []string
	}{
		{"unsigned", nil},
		{"Bearer only", []string{"Bearer abc"}},
		{"malformed X-Matrix", []string{`X-Matrix origin="` + a.Name}},
		{"missing sig", []string{`X-Matrix origin="` + a.Name + `",key="` + keyID + `"`}},
		{"signature by another key", []string{forged.String()}},
		{"signature of another request", []string{`X-Matrix origin="` + a.Name + `",destination="` + b.Name + `",key="` + keyID + `",sig="` + otherPath.Sig + `"`}},
		{"signature not base64", []string{`X-Matrix origin="` + a.Name + `",destination="` + b.Name + `",key="` + keyID + `",sig="!!!"`}},
		{"wrong destination", []string{wrongDest.String()}},
		{"destination omitted but signed for another", []string{`X-Matrix origin="` + a.Name + `",key="` + keyID + `",sig="` + wrongDest.Sig + `"`}},
		{"unknown key", []string{unknownKey.String()}},
		{"origin not a server name", []string{`X-Matrix origin="not a server",destination="` + b.Name + `",key="` + keyID + `",sig="` + good.Sig + `"`}},
		{"impersonating another server", []string{asC.String()}},
		{"two origins", []string{good.String(), sign(t, path, c.Name, b.Name, cKeyID, cKey).String()}},
		{"unreachable origin", []string{sign(t, path, "127.0.0.1:1", b.Name, keyID, key).String()}},
	} {
		status, body := rawFed(t, b, path, tc.auth...)
		wantErr(t, tc.name, status, body, http.StatusUnauthorized, "M_UNAUTHORIZED")
	}

	// The version and key endpoints need no signature.
	for _, p := range []string{"/_matrix/federation/v1/version", "/_matrix/key/v2/server", "/_matrix/key/v2/query/" + a.Name} {
		if status, body := rawFed(t, b, p); status != 200 {
			t.Fatalf("%s unsigned: %d %s", p, status, body)
		}
	}
	// An unknown federation endpoint is M_UNRECOGNIZED, signed or not.
	status, body := rawFed(t, b, "/_matrix/federation/v1/nothing")
	wantErr(t, "unknown endpoint", status, body, 404, "M_UNRECOGNIZED")
}

// TestOldAndExpiredKeysRefused: a request signed with a key that is no
// longer current, or whose validity has ended, is refused.
func TestOldAndExpiredKeysRefused(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	b.RegisterUser(t, "bob")
	path := "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape("@bob:"+b.Name)

	// A rotates; B, which never saw A's first key, learns it only as an
	// old key, which signs events but not requests.
	oldID, oldKey := a.Keys().Current()
	if err := a.Keys().Rotate(time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	status, body := rawFed(t, b, path, sign(t, path, a.Name, b.Name, oldID, oldKey).String())
	wantErr(t, "old key", status, body, http.StatusUnauthorized, "M_UNAUTHORIZED")
	// The new key works, through A's own client.
	if err := a.SignedFederationClient().DoJSON(ctxT(t), http.MethodGet, b.Name, path, nil, nil); err != nil {
		t.Fatalf("request signed with the new key: %v", err)
	}

	// A server whose key response expired an hour ago.
	expired := newFakeKeyServer(t, a.CA, time.Now().Add(-time.Hour))
	status, body = rawFed(t, b, path, sign(t, path, expired.name, b.Name, expired.keyID, expired.key).String())
	wantErr(t, "expired key", status, body, http.StatusUnauthorized, "M_UNAUTHORIZED")
	if !strings.Contains(string(body), "not valid at") {
		t.Fatalf("expired key: %s", body)
	}
	// The same server with a valid response is accepted.
	valid := newFakeKeyServer(t, a.CA, time.Now().Add(time.Hour))
	if status, body := rawFed(t, b, path, sign(t, path, valid.name, b.Name, valid.keyID, valid.key).String()); status != 200 {
		t.Fatalf("fake server with a valid key: %d %s", status, body)
	}
}

// fakeKeyServer is a homeserver reduced to its key endpoint, on 127.0.0.1
// with a certificate from the test CA, so that a test controls what its
// key response says.
type fakeKeyServer struct {
	name  string
	keyID string
	key   ed25519.PrivateKey
}

func newFakeKeyServer(t *testing.T, ca *tlsutil.CA, validUntil time.Time) *fakeKeyServer {
	t.Helper()
	f := &fakeKeyServer{keyID: "ed25519:fake"}
	_, f.key, _ = ed25519.GenerateKey(nil)
	cert, err := ca.IssueTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/key/v2/server" {
			http.NotFound(w, r)
			return
		}
		body, _ := json.Marshal(map[string]any{
			"server_name":    f.name,
			"valid_until_ts": validUntil.UnixMilli(),
			"verify_keys":    map[string]any{f.keyID: map[string]string{"key": pdu.EncodeBase64(f.key.Public().(ed25519.PublicKey))}},
		})
		signed, err := pdu.SignJSON(body, f.name, f.keyID, f.key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(signed)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.name = srv.Listener.Addr().String()
	return f
}
