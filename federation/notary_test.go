package federation_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func currentPub(s *servertest.Server) (string, ed25519.PublicKey) {
	id, k := s.Keys().Current()
	return id, k.Public().(ed25519.PublicKey)
}

// TestFetchKeysDirectly: a server fetches another's keys from that server,
// over TLS checked with federation_trust_ca, and keeps them.
func TestFetchKeysDirectly(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	bID, bPub := currentPub(b)
	got, err := a.ServerKeys().VerifyKey(ctxT(t), b.Name, bID, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(bPub) {
		t.Fatal("A got another key for B")
	}
	stored, err := a.DB().ServerKeys(ctxT(t), b.Name)
	if err != nil || len(stored) != 1 || stored[0].KeyID != bID {
		t.Fatalf("A's database holds %v, %v", stored, err)
	}
	// The key outlives B: A answers from what it keeps.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ServerKeys().VerifyKey(ctxT(t), b.Name, bID, time.Now().UnixMilli()); err != nil {
		t.Fatalf("after B stopped: %v", err)
	}
}

// notaryAnswer is the response of the notary endpoints.
type notaryAnswer struct {
	ServerKeys []json.RawMessage `json:"server_keys"`
}

func postJSON(t *testing.T, s *servertest.Server, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.FederationURL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.FedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// checkNotarised checks that raw is origin's key response signed by both
// origin and notary.
func checkNotarised(t *testing.T, raw []byte, origin, notary *servertest.Server) {
	t.Helper()
	var r struct {
		ServerName string `json:"server_name"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.ServerName != origin.Name {
		t.Fatalf("response for %q, want %s: %s", r.ServerName, origin.Name, raw)
	}
	for _, signer := range []*servertest.Server{origin, notary} {
		id, pub := currentPub(signer)
		if err := pdu.VerifyJSON(raw, signer.Name, id, pub); err != nil {
			t.Fatalf("signature of %s on %s's keys: %v\n%s", signer.Name, origin.Name, err, raw)
		}
	}
}

// TestNotary: C serves B's keys as a notary, signed by B and by C; A,
// configured to trust C, gets B's keys through C once B is gone.
func TestNotary(t *testing.T) {
	var notaryName string
	servers := servertest.Start(t, 3, servertest.WithConfig(func(i int, cfg *config.Config) {
		switch i {
		case 0:
			notaryName = cfg.ServerName
		case 2:
			cfg.TrustedKeyServers = notaryName
		}
	}))
	c, b, a := servers[0], servers[1], servers[2]

	// GET /_matrix/key/v2/query/{serverName}
	status, body := rawFed(t, c, "/_matrix/key/v2/query/"+url.PathEscape(b.Name)+"?minimum_valid_until_ts="+
		strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10))
	var ans notaryAnswer
	if err := json.Unmarshal(body, &ans); err != nil || status != 200 || len(ans.ServerKeys) != 1 {
		t.Fatalf("GET query: %d %s", status, body)
	}
	checkNotarised(t, ans.ServerKeys[0], b, c)

	// POST /_matrix/key/v2/query: B (cached now), C itself, an
	// unreachable server and a bad name; only B and C come back.
	bID, _ := currentPub(b)
	status, body = postJSON(t, c, "/_matrix/key/v2/query", `{"server_keys":{`+
		`"`+b.Name+`":{"`+bID+`":{"minimum_valid_until_ts":1}},`+
		`"`+c.Name+`":{},"127.0.0.1:1":{},"bad name":{}}}`)
	ans = notaryAnswer{}
	if err := json.Unmarshal(body, &ans); err != nil || status != 200 || len(ans.ServerKeys) != 2 {
		t.Fatalf("POST query: %d %s", status, body)
	}
	byName := map[string][]byte{}
	for _, raw := range ans.ServerKeys {
		var r struct {
			ServerName string `json:"server_name"`
		}
		json.Unmarshal(raw, &r)
		byName[r.ServerName] = raw
	}
	checkNotarised(t, byName[b.Name], b, c)
	checkNotarised(t, byName[c.Name], c, c) // the notary's own keys
	// An unreachable server alone: an empty list, not an error.
	status, body = rawFed(t, c, "/_matrix/key/v2/query/127.0.0.1:1")
	if status != 200 || string(bytes.TrimSpace(body)) != `{"server_keys":[]}` {
		t.Fatalf("unreachable: %d %s", status, body)
	}

	// Bad requests.
	status, body = rawFed(t, c, "/_matrix/key/v2/query/"+url.PathEscape(b.Name)+"?minimum_valid_until_ts=soon")
	wantErr(t, "bad minimum_valid_until_ts", status, body, 400, "M_INVALID_PARAM")
	status, body = rawFed(t, c, "/_matrix/key/v2/query/bad%20name")
	wantErr(t, "bad server name", status, body, 400, "M_INVALID_PARAM")
	status, body = postJSON(t, c, "/_matrix/key/v2/query", `{"server_keys":`)
	wantErr(t, "not JSON", status, body, 400, "M_NOT_JSON")
	status, body = postJSON(t, c, "/_matrix/key/v2/query", `{}`)
	wantErr(t, "no server_keys", status, body, 400, "M_BAD_JSON")
	status, body = postJSON(t, c, "/_matrix/key/v2/query", `{"server_keys":{"x":{"k":{"minimum_valid_until_ts":"soon"}}}}`)
	wantErr(t, "criteria of the wrong type", status, body, 400, "M_BAD_JSON")

	// B goes away. A cannot ask B, so it asks its notary C, which
	// answers from what it kept.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	bID, bPub := currentPub(b)
	got, err := a.ServerKeys().VerifyKey(ctxT(t), b.Name, bID, time.Now().UnixMilli())
	if err != nil {
		t.Fatalf("through the notary: %v", err)
	}
	if !got.Equal(bPub) {
		t.Fatal("the notary gave another key")
	}
	// What A kept carries C's signature beside B's.
	kept, err := a.DB().ServerKeyResponse(ctxT(t), b.Name)
	if err != nil {
		t.Fatal(err)
	}
	checkNotarised(t, kept.JSON, b, c)
}
