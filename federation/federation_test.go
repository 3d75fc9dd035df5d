package federation_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, body
}

func TestVersionOverTLS(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	status, body := get(t, s.FedClient, s.FederationURL+"/_matrix/federation/v1/version")
	var v struct {
		Server struct{ Name, Version string }
	}
	if err := json.Unmarshal(body, &v); err != nil || status != http.StatusOK {
		t.Fatalf("got %d %s (%v)", status, body, err)
	}
	if v.Server.Name != "Myelin" || v.Server.Version != server.Version() {
		t.Fatalf("server %+v, want Myelin %s", v.Server, server.Version())
	}

	// The federation listener speaks TLS only (net/http answers a plain
	// request with 400), with a certificate only the test CA vouches for.
	plain := strings.Replace(s.FederationURL, "https:", "http:", 1) + "/_matrix/federation/v1/version"
	if resp, err := http.Get(plain); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("federation served over plain HTTP")
		}
	}
	if _, err := http.Get(s.FederationURL + "/_matrix/federation/v1/version"); err == nil {
		t.Fatal("a client without the test CA accepted the federation certificate")
	}
}

// keyResponse is GET /_matrix/key/v2/server as the spec defines it.
type keyResponse struct {
	ServerName    string                          `json:"server_name"`
	ValidUntilTS  int64                           `json:"valid_until_ts"`
	VerifyKeys    map[string]struct{ Key string } `json:"verify_keys"`
	OldVerifyKeys map[string]struct {
		Key       string
		ExpiredTS int64 `json:"expired_ts"`
	} `json:"old_verify_keys"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// fetchKeys gets a server's keys and checks the response as a remote server
// would: the self-signature verifies with a key the response lists.
func fetchKeys(t *testing.T, c *http.Client, baseURL, serverName string) (keyResponse, []byte) {
	t.Helper()
	status, body := get(t, c, baseURL+"/_matrix/key/v2/server")
	var kr keyResponse
	if err := json.Unmarshal(body, &kr); err != nil || status != http.StatusOK {
		t.Fatalf("got %d %s (%v)", status, body, err)
	}
	if kr.ServerName != serverName {
		t.Fatalf("server_name %q, want %q", kr.ServerName, serverName)
	}
	if len(kr.VerifyKeys) == 0 || len(kr.Signatures[serverName]) == 0 {
		t.Fatalf("no verify keys or no signature: %s", body)
	}
	for keyID := range kr.Signatures[serverName] {
		vk, ok := kr.VerifyKeys[keyID]
		if !ok {
			t.Fatalf("signed with %s, which is not in verify_keys: %s", keyID, body)
		}
		pub, err := base64.RawStdEncoding.DecodeString(vk.Key)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("verify key %s %q is not unpadded base64 of an ed25519 key (%v)", keyID, vk.Key, err)
		}
		if err := pdu.VerifyJSON(body, serverName, keyID, ed25519.PublicKey(pub)); err != nil {
			t.Fatalf("signature by %s does not verify: %v", keyID, err)
		}
	}
	return kr, body
}

func TestServerKeys(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithServerOptions(server.WithKeyValidity(2*time.Hour)))[0]
	before := time.Now()
	kr, _ := fetchKeys(t, s.FedClient, s.FederationURL, s.Name)

	keyID, priv := s.Keys().Current()
	if got := kr.VerifyKeys[keyID].Key; got != base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("verify key %s = %q, not the server's current key", keyID, got)
	}
	if len(kr.VerifyKeys) != 1 || len(kr.OldVerifyKeys) != 0 {
		t.Fatalf("verify keys %v, old %v; want only the current key", kr.VerifyKeys, kr.OldVerifyKeys)
	}
	validUntil := time.UnixMilli(kr.ValidUntilTS)
	if validUntil.Before(before.Add(2*time.Hour-time.Second)) || validUntil.After(time.Now().Add(2*time.Hour+time.Second)) {
		t.Fatalf("valid_until_ts %v, want now + 2h (the configured validity)", validUntil)
	}

	// After a rotation, the previous key is an old verify key with the time
	// it expired, and the new key signs.
	oldID := keyID
	rotated := time.Now()
	if err := s.Keys().Rotate(rotated); err != nil {
		t.Fatal(err)
	}
	kr, _ = fetchKeys(t, s.FedClient, s.FederationURL, s.Name)
	newID, _ := s.Keys().Current()
	if _, ok := kr.Signatures[s.Name][newID]; !ok || newID == oldID {
		t.Fatalf("after rotation: signatures %v, want one by the new key %s", kr.Signatures, newID)
	}
	old, ok := kr.OldVerifyKeys[oldID]
	if !ok || old.Key != base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("old_verify_keys %v, want %s with the previous key", kr.OldVerifyKeys, oldID)
	}
	if d := old.ExpiredTS - rotated.UnixMilli(); d < -1000 || d > 1000 {
		t.Fatalf("expired_ts %d, want the rotation time %d", old.ExpiredTS, rotated.UnixMilli())
	}
}

func TestDefaultKeyValidityIsOneDay(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	kr, _ := fetchKeys(t, s.FedClient, s.FederationURL, s.Name)
	if d := time.Until(time.UnixMilli(kr.ValidUntilTS)); d < 24*time.Hour-time.Minute || d > 24*time.Hour {
		t.Fatalf("valid_until_ts is %v ahead, want one day", d)
	}
}

// TestServersFetchEachOthersKeys has each server fetch the other's keys
// with its own outbound federation client, which trusts the test CA only
// through federation_trust_ca.
func TestServersFetchEachOthersKeys(t *testing.T) {
	servers := servertest.Start(t, 2)
	for i, s := range servers {
		other := servers[1-i]
		kr, _ := fetchKeys(t, s.FederationClient(), other.FederationURL, other.Name)
		otherID, _ := other.Keys().Current()
		if _, ok := kr.VerifyKeys[otherID]; !ok {
			t.Fatalf("%s fetched %s's keys without its current key %s", s.Name, other.Name, otherID)
		}
	}
}

func TestWellKnownServer(t *testing.T) {
	servers := servertest.Start(t, 2, servertest.WithConfig(func(i int, cfg *config.Config) {
		if i == 0 {
			cfg.WellKnownServer = "matrix.example.org:443"
		}
	}))
	on, off := servers[0], servers[1]
	// On both listeners: delegation is usually looked up on port 443, where
	// a reverse proxy forwards to the client listener.
	for _, u := range []struct {
		c   *http.Client
		url string
	}{{on.FedClient, on.FederationURL}, {on.Client, on.ClientURL}} {
		status, body := get(t, u.c, u.url+"/.well-known/matrix/server")
		var wk map[string]string
		if err := json.Unmarshal(body, &wk); err != nil || status != http.StatusOK || wk["m.server"] != "matrix.example.org:443" {
			t.Fatalf("%s: got %d %s", u.url, status, body)
		}
	}
	for _, u := range []struct {
		c   *http.Client
		url string
	}{{off.FedClient, off.FederationURL}, {off.Client, off.ClientURL}} {
		status, body := get(t, u.c, u.url+"/.well-known/matrix/server")
		var e map[string]string
		if err := json.Unmarshal(body, &e); err != nil || status != http.StatusNotFound || e["errcode"] != "M_NOT_FOUND" {
			t.Fatalf("%s unconfigured: got %d %s", u.url, status, body)
		}
	}
}

// TestServerKeysInterop checks our key response with an independent
// implementation of Matrix JSON signing, Python's signedjson (Debian
// python3-signedjson). CI sets MYELIN_REQUIRE_INTEROP=1, making a missing
// library a failure instead of a skip.
func TestServerKeysInterop(t *testing.T) {
	const script = `
import json, sys
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64
d = json.load(open(sys.argv[1]))
for key_id, k in d["verify_keys"].items():
    verify_signed_json(d, d["server_name"], decode_verify_key_bytes(key_id, decode_base64(k["key"])))
print("verified", len(d["verify_keys"]))
`
	servertest.NeedPython(t, "signedjson.sign")
	s := servertest.Start(t, 1)[0]
	_, body := fetchKeys(t, s.FedClient, s.FederationURL, s.Name)
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c", script, file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified 1") {
		t.Fatalf("signedjson refused our key response: %v\n%s\nresponse: %s", err, out, body)
	}
}
