package clientapi_test

// Helpers for the end-to-end encryption tests: a device that holds real
// ed25519 keys and signs what it uploads, as an encrypting client does.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// cryptoDevice is a user's logged-in device with its signing key.
type cryptoDevice struct {
	*user
	deviceID string
	priv     ed25519.PrivateKey
	nextKey  int
}

// newCryptoUser registers localpart and returns its first device.
func newCryptoUser(t *testing.T, s *servertest.Server, localpart string) *cryptoDevice {
	t.Helper()
	u := newUser(t, s, localpart)
	return deviceOf(t, u)
}

// deviceOf wraps the device u's token belongs to.
func deviceOf(t *testing.T, u *user) *cryptoDevice {
	t.Helper()
	id := u.ok(t, "GET", v3+"/account/whoami", nil).Get("device_id").Str
	if id == "" {
		t.Fatal("whoami: no device_id")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &cryptoDevice{user: u, deviceID: id, priv: priv}
}

// newLogin logs the device's user in on a new device.
func (d *cryptoDevice) newLogin(t *testing.T) *cryptoDevice {
	t.Helper()
	token, _ := d.s.Login(t, d.id)
	return deviceOf(t, &user{s: d.s, id: d.id, token: token})
}

func (d *cryptoDevice) pub() string { return pdu.EncodeBase64(d.priv.Public().(ed25519.PublicKey)) }

// keyID is the device's key ID in signatures.
func (d *cryptoDevice) keyID() string { return "ed25519:" + d.deviceID }

// signAs signs obj with priv as user's key keyID.
func signAs(t *testing.T, obj any, userID, keyID string, priv ed25519.PrivateKey) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pdu.SignJSON(raw, userID, keyID, priv)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// deviceKeys returns the device's identity keys, signed by it.
func (d *cryptoDevice) deviceKeys(t *testing.T) json.RawMessage {
	t.Helper()
	return signAs(t, map[string]any{
		"user_id":    d.id,
		"device_id":  d.deviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": map[string]string{
			"ed25519:" + d.deviceID:    d.pub(),
			"curve25519:" + d.deviceID: randomKey(),
		},
	}, d.id, d.keyID(), d.priv)
}

// oneTimeKeys returns n new signed curve25519 keys, by name.
func (d *cryptoDevice) oneTimeKeys(t *testing.T, n int) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for range n {
		d.nextKey++
		name := fmt.Sprintf("signed_curve25519:AAAA%04d", d.nextKey)
		out[name] = signAs(t, map[string]any{"key": randomKey()}, d.id, d.keyID(), d.priv)
	}
	return out
}

// fallbackKey returns a new signed fallback key, by name.
func (d *cryptoDevice) fallbackKey(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	d.nextKey++
	name := fmt.Sprintf("signed_curve25519:FB%04d", d.nextKey)
	return map[string]json.RawMessage{name: signAs(t, map[string]any{"key": randomKey(), "fallback": true}, d.id, d.keyID(), d.priv)}
}

// upload uploads keys and returns the one-time key counts.
func (d *cryptoDevice) upload(t *testing.T, body map[string]any) gjson.Result {
	t.Helper()
	return d.ok(t, "POST", v3+"/keys/upload", body).Get("one_time_key_counts")
}

// uploadAll uploads the device keys and n one-time keys.
func (d *cryptoDevice) uploadAll(t *testing.T, n int) {
	t.Helper()
	d.upload(t, map[string]any{"device_keys": d.deviceKeys(t), "one_time_keys": d.oneTimeKeys(t, n)})
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return pdu.EncodeBase64(b)
}

// query asks for users' keys (all devices) as d.
func (d *cryptoDevice) query(t *testing.T, users ...string) gjson.Result {
	t.Helper()
	q := map[string][]string{}
	for _, u := range users {
		q[u] = []string{}
	}
	return d.ok(t, "POST", v3+"/keys/query", map[string]any{"device_keys": q})
}

// claim claims a signed_curve25519 key of each device (user → device IDs).
func (d *cryptoDevice) claim(t *testing.T, devices map[string][]string) gjson.Result {
	t.Helper()
	q := map[string]map[string]string{}
	for u, ids := range devices {
		q[u] = map[string]string{}
		for _, id := range ids {
			q[u][id] = "signed_curve25519"
		}
	}
	return d.ok(t, "POST", v3+"/keys/claim", map[string]any{"one_time_keys": q})
}

// syncFrom syncs d from since ("" for an initial sync) without waiting, and
// returns the response.
func (d *cryptoDevice) syncFrom(t *testing.T, since string) gjson.Result {
	t.Helper()
	path := v3 + "/sync?timeout=0&set_presence=offline"
	if since != "" {
		path += "&since=" + since
	}
	return d.ok(t, http.MethodGet, path, nil)
}

// crossSigningKeys are a user's master, self-signing and user-signing keys.
type crossSigningKeys struct {
	master, self, userSigning ed25519.PrivateKey
}

func newCrossSigningKeys(t *testing.T) *crossSigningKeys {
	t.Helper()
	gen := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return &crossSigningKeys{master: gen(), self: gen(), userSigning: gen()}
}

func pubOf(k ed25519.PrivateKey) string { return pdu.EncodeBase64(k.Public().(ed25519.PublicKey)) }

// keyObject is an unsigned cross-signing key object of userID.
func keyObject(userID, usage string, k ed25519.PrivateKey) map[string]any {
	return map[string]any{"user_id": userID, "usage": []string{usage},
		"keys": map[string]string{"ed25519:" + pubOf(k): pubOf(k)}}
}

// upload returns the body of /keys/device_signing/upload for the three
// keys, the self-signing and user-signing ones signed by the master key.
func (c *crossSigningKeys) upload(t *testing.T, userID string) map[string]any {
	t.Helper()
	masterID := "ed25519:" + pubOf(c.master)
	return map[string]any{
		"master_key":       keyObject(userID, "master", c.master),
		"self_signing_key": signAs(t, keyObject(userID, "self_signing", c.self), userID, masterID, c.master),
		"user_signing_key": signAs(t, keyObject(userID, "user_signing", c.userSigning), userID, masterID, c.master),
	}
}
