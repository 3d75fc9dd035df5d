package federation

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/federation/fedauth"
	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/federation/serverkeys"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestAuthenticateBody checks what the middleware does with request
// bodies, on a test endpoint that echoes the body and the origin. The
// requests are signed by this server itself, whose keys the key store has
// without fetching.
func TestAuthenticateBody(t *testing.T) {
	const name = "me.test"
	ring, err := keys.LoadOrGenerate(filepath.Join(t.TempDir(), "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.Open(t, storage.SQLite)
	client, err := fedclient.New(fedclient.Config{ServerName: name, Keys: ring, TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := serverkeys.New(serverkeys.Config{DB: db, Client: client, ServerName: name, Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Namespace: "authntest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	rs, err := roomserver.New(roomserver.Deps{DB: db, Bus: b, ServerName: name, Keys: ring, ServerKeys: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	cfg := config.Default()
	cfg.ServerName = name
	// OnRemoteContact hears of each authenticated request's origin, and
	// of no other.
	var contacts []string
	a, err := New(Deps{Config: cfg, Keys: ring, DB: db, Roomserver: rs, ServerKeys: store, Bus: b,
		OnRemoteContact: func(origin string) { contacts = append(contacts, origin) }})
	if err != nil {
		t.Fatal(err)
	}
	r := httputil.NewRouter()
	signed := r.NewRoute().Subrouter()
	signed.Use(a.Authenticate)
	signed.HandleFunc("/_matrix/federation/v1/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		httputil.WriteJSON(w, r, 200, map[string]string{"origin": Origin(r.Context()), "body": string(body)})
	}).Methods(http.MethodPost)
	h := httputil.LimitBody(2000)(r)

	send := func(body string, auth ...string) (int, map[string]string) {
		req := httptest.NewRequest(http.MethodPost, "/_matrix/federation/v1/echo?x=1", strings.NewReader(body))
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]string
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	keyID, key := ring.Current()
	signFor := func(body string) string {
		h, err := fedauth.Sign(http.MethodPost, "/_matrix/federation/v1/echo?x=1", name, name, []byte(body), keyID, key)
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}

	body := `{"pdus":[{"a":1}],"edus":[]}`
	status, out := send(body, signFor(body))
	if status != 200 || out["origin"] != name || out["body"] != body {
		t.Fatalf("signed POST: %d %v", status, out)
	}
	// The signature covers the body.
	status, out = send(`{"pdus":[{"a":2}],"edus":[]}`, signFor(body))
	if status != 401 || out["errcode"] != "M_UNAUTHORIZED" {
		t.Fatalf("changed body: %d %v", status, out)
	}
	if len(contacts) != 1 || contacts[0] != name {
		t.Fatalf("remote contacts after one signed and one refused request: %v", contacts)
	}
	// A signature without the body does not sign a request with one.
	status, out = send(body, signFor(""))
	if status != 401 || out["errcode"] != "M_UNAUTHORIZED" {
		t.Fatalf("body not signed: %d %v", status, out)
	}
	// Several headers: one that verifies is enough.
	bad := strings.Replace(signFor(body), `sig="`, `sig="AAAA`, 1)
	if status, out := send(body, bad, signFor(body)); status != 200 {
		t.Fatalf("a bad and a good header: %d %v", status, out)
	}
	if status, out := send(body, bad); status != 401 {
		t.Fatalf("a bad header alone: %d %v", status, out)
	}
	// A body that is not JSON cannot have been signed: 400.
	status, out = send(`{"pdus":`, signFor(body))
	if status != 400 || out["errcode"] != "M_NOT_JSON" {
		t.Fatalf("not JSON: %d %v", status, out)
	}
	// Over the body limit: 413, before any key is looked at.
	big := `{"x":"` + strings.Repeat("a", 3000) + `"}`
	status, out = send(big, signFor(big))
	if status != 413 || out["errcode"] != "M_TOO_LARGE" {
		t.Fatalf("too large: %d %v", status, out)
	}
	// Outside authenticated requests there is no origin.
	if o := Origin(httptest.NewRequest("GET", "/", nil).Context()); o != "" {
		t.Fatalf("Origin outside a request: %q", o)
	}
}
