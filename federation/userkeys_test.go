package federation_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// keyHolder is a user of a test server with one device whose keys it signs.
type keyHolder struct {
	s              *servertest.Server
	id, token, dev string
	priv           ed25519.PrivateKey
	n              int
}

func newKeyHolder(t *testing.T, s *servertest.Server, localpart string) *keyHolder {
	t.Helper()
	id, token := s.RegisterUser(t, localpart)
	var who struct {
		DeviceID string `json:"device_id"`
	}
	s.DoJSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", token, nil, &who)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return &keyHolder{s: s, id: id, token: token, dev: who.DeviceID, priv: priv}
}

func signedBy(t *testing.T, obj any, userID, keyID string, priv ed25519.PrivateKey) json.RawMessage {
	t.Helper()
	raw, _ := json.Marshal(obj)
	signed, err := pdu.SignJSON(raw, userID, keyID, priv)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func b64(k ed25519.PrivateKey) string { return pdu.EncodeBase64(k.Public().(ed25519.PublicKey)) }

func randKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return pdu.EncodeBase64(b)
}

// uploadKeys uploads the device's keys, n one-time keys and a fallback key.
func (k *keyHolder) uploadKeys(t *testing.T, n int) {
	t.Helper()
	keyID := "ed25519:" + k.dev
	otks := map[string]json.RawMessage{}
	for range n {
		k.n++
		otks[fmt.Sprintf("signed_curve25519:K%03d", k.n)] = signedBy(t, map[string]any{"key": randKey()}, k.id, keyID, k.priv)
	}
	k.s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/keys/upload", k.token, map[string]any{
		"device_keys": signedBy(t, map[string]any{
			"user_id": k.id, "device_id": k.dev, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
			"keys": map[string]string{keyID: b64(k.priv), "curve25519:" + k.dev: randKey()},
		}, k.id, keyID, k.priv),
		"one_time_keys": otks,
		"fallback_keys": map[string]json.RawMessage{"signed_curve25519:FB": signedBy(t, map[string]any{"key": randKey(), "fallback": true}, k.id, keyID, k.priv)},
	}, nil)
}

// crossSign uploads new master, self-signing and user-signing keys and
// returns the user-signing key.
func (k *keyHolder) crossSign(t *testing.T) (master, userSigning ed25519.PrivateKey) {
	t.Helper()
	gen := func() ed25519.PrivateKey { _, p, _ := ed25519.GenerateKey(rand.Reader); return p }
	master, self, usk := gen(), gen(), gen()
	obj := func(usage string, p ed25519.PrivateKey) map[string]any {
		return map[string]any{"user_id": k.id, "usage": []string{usage}, "keys": map[string]string{"ed25519:" + b64(p): b64(p)}}
	}
	mid := "ed25519:" + b64(master)
	k.s.DoJSON(t, http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload", k.token, map[string]any{
		"master_key":       obj("master", master),
		"self_signing_key": signedBy(t, obj("self_signing", self), k.id, mid, master),
		"user_signing_key": signedBy(t, obj("user_signing", usk), k.id, mid, master),
	}, nil)
	return master, usk
}

func (k *keyHolder) post(t *testing.T, path string, body any) gjson.Result {
	t.Helper()
	status, raw := k.s.Do(t, http.MethodPost, "/_matrix/client/v3"+path, k.token, body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, status, raw)
	}
	return gjson.ParseBytes(raw)
}

func esc(k string) string {
	return strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`, "@", `\@`, ":", `\:`).Replace(k)
}

// TestUserDevicesAndKeysOverFederation: another server fetches a user's
// device list (GET /user/devices), and queries and claims their keys
// (POST /user/keys/query, /user/keys/claim), signed; a user of another
// server, or unknown, is refused.
func TestUserDevicesAndKeysOverFederation(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	bob := newKeyHolder(t, b, "bob")
	bob.uploadKeys(t, 2)
	bob.crossSign(t)
	fromA := a.SignedFederationClient()

	var devices struct {
		UserID         string            `json:"user_id"`
		StreamID       int64             `json:"stream_id"`
		Devices        []json.RawMessage `json:"devices"`
		MasterKey      json.RawMessage   `json:"master_key"`
		SelfSigningKey json.RawMessage   `json:"self_signing_key"`
	}
	if err := fromA.DoJSON(ctxT(t), http.MethodGet, b.Name, "/_matrix/federation/v1/user/devices/"+url.PathEscape(bob.id), nil, &devices); err != nil {
		t.Fatal(err)
	}
	if devices.UserID != bob.id || devices.StreamID <= 0 || len(devices.Devices) != 1 || devices.MasterKey == nil || devices.SelfSigningKey == nil {
		t.Fatalf("/user/devices: %+v", devices)
	}
	dev := gjson.ParseBytes(devices.Devices[0])
	if dev.Get("device_id").Str != bob.dev || dev.Get("keys.user_id").Str != bob.id || dev.Get("device_display_name").Exists() {
		t.Fatalf("device %s", dev.Raw)
	}

	var q gjson.Result
	var raw json.RawMessage
	if err := fromA.DoJSON(ctxT(t), http.MethodPost, b.Name, "/_matrix/federation/v1/user/keys/query",
		map[string]any{"device_keys": map[string][]string{bob.id: {}, "@zed:" + a.Name: {}}}, &raw); err != nil {
		t.Fatal(err)
	}
	q = gjson.ParseBytes(raw)
	if !q.Get("device_keys."+esc(bob.id)+"."+bob.dev).Exists() || !q.Get("master_keys."+esc(bob.id)).Exists() ||
		!q.Get("self_signing_keys."+esc(bob.id)).Exists() || q.Get("user_signing_keys").Exists() ||
		q.Get("device_keys."+esc("@zed:"+a.Name)).Exists() || q.Get("failures").Exists() {
		t.Fatalf("/user/keys/query: %s", q.Raw)
	}

	claimed := map[string]bool{}
	for range 3 {
		if err := fromA.DoJSON(ctxT(t), http.MethodPost, b.Name, "/_matrix/federation/v1/user/keys/claim",
			map[string]any{"one_time_keys": map[string]any{bob.id: map[string]string{bob.dev: "signed_curve25519"}}}, &raw); err != nil {
			t.Fatal(err)
		}
		keys := gjson.ParseBytes(raw).Get("one_time_keys." + esc(bob.id) + "." + bob.dev).Map()
		if len(keys) != 1 {
			t.Fatalf("/user/keys/claim: %s", raw)
		}
		for name := range keys {
			claimed[name] = true
		}
	}
	if len(claimed) != 3 || !claimed["signed_curve25519:FB"] {
		t.Fatalf("claimed %v: two one-time keys, then the fallback key", claimed)
	}

	err := fromA.DoJSON(ctxT(t), http.MethodGet, b.Name, "/_matrix/federation/v1/user/devices/"+url.PathEscape("@bob:"+a.Name), nil, nil)
	wantFedErr(t, "another server's user", err, 400, "M_INVALID_PARAM")
	err = fromA.DoJSON(ctxT(t), http.MethodGet, b.Name, "/_matrix/federation/v1/user/devices/"+url.PathEscape("@nobody:"+b.Name), nil, nil)
	wantFedErr(t, "an unknown user", err, 404, "M_NOT_FOUND")
	status, body := rawFed(t, b, "/_matrix/federation/v1/user/devices/"+url.PathEscape(bob.id))
	wantErr(t, "an unsigned request", status, body, 401, "M_UNAUTHORIZED")
}

// TestRemoteKeysThroughClientAPI: a client's /keys/query and /keys/claim
// for users of another server ask that server; a server that cannot be
// reached is listed in failures, within the request's timeout. A
// user-signing signature of a remote master key is shown to its signer.
func TestRemoteKeysThroughClientAPI(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	alice := newKeyHolder(t, a, "alice")
	bob := newKeyHolder(t, b, "bob")
	bob.uploadKeys(t, 1)
	bobMaster, _ := bob.crossSign(t)
	_, aliceUSK := alice.crossSign(t)

	unreachable := "127.0.0.1:9" // the discard port: nothing listens
	start := time.Now()
	q := alice.post(t, "/keys/query", map[string]any{"timeout": 3000,
		"device_keys": map[string][]string{bob.id: {}, "@zed:" + unreachable: {}}})
	if !q.Get("device_keys."+esc(bob.id)+"."+bob.dev).Exists() || !q.Get("master_keys."+esc(bob.id)).Exists() ||
		!q.Get("self_signing_keys."+esc(bob.id)).Exists() || !q.Get("failures."+esc(unreachable)).Exists() {
		t.Fatalf("remote query: %s", q.Raw)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the query took %v with a 3 s timeout", took)
	}
	c := alice.post(t, "/keys/claim", map[string]any{"one_time_keys": map[string]any{
		bob.id: map[string]string{bob.dev: "signed_curve25519"}, "@zed:" + unreachable: map[string]string{"Z": "signed_curve25519"},
	}, "timeout": 3000})
	if len(c.Get("one_time_keys."+esc(bob.id)+"."+bob.dev).Map()) != 1 || !c.Get("failures."+esc(unreachable)).Exists() {
		t.Fatalf("remote claim: %s", c.Raw)
	}

	// alice signs bob's master key with her user-signing key.
	masterObj := map[string]any{"user_id": bob.id, "usage": []string{"master"}, "keys": map[string]string{"ed25519:" + b64(bobMaster): b64(bobMaster)}}
	res := alice.post(t, "/keys/signatures/upload", map[string]any{bob.id: map[string]any{
		b64(bobMaster): signedBy(t, masterObj, alice.id, "ed25519:"+b64(aliceUSK), aliceUSK),
	}})
	if res.Get("failures").Raw != "{}" {
		t.Fatalf("signature upload: %s", res.Raw)
	}
	q = alice.post(t, "/keys/query", map[string]any{"device_keys": map[string][]string{bob.id: {}}})
	if !q.Get("master_keys." + esc(bob.id) + ".signatures." + esc(alice.id) + "." + esc("ed25519:"+b64(aliceUSK))).Exists() {
		t.Fatalf("alice does not see her signature of bob's master key: %s", q.Get("master_keys").Raw)
	}
	own := bob.post(t, "/keys/query", map[string]any{"device_keys": map[string][]string{bob.id: {}}})
	if own.Get("master_keys." + esc(bob.id) + ".signatures." + esc(alice.id)).Exists() {
		t.Fatalf("bob's server shows alice's private signature: %s", own.Raw)
	}
}
