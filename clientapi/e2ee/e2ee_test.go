package e2ee

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// TestReplaces is the spec's rule for a session's backup, case by case.
func TestReplaces(t *testing.T) {
	k := func(verified bool, index, forwarded int64) storage.BackupKey {
		return storage.BackupKey{IsVerified: verified, FirstMessageIndex: index, ForwardedCount: forwarded}
	}
	for _, c := range []struct {
		what              string
		candidate, stored storage.BackupKey
		want              bool
	}{
		{"verified beats unverified, whatever the index", k(true, 9, 9), k(false, 0, 0), true},
		{"unverified never beats verified", k(false, 0, 0), k(true, 9, 9), false},
		{"a lower index wins", k(false, 1, 5), k(false, 2, 0), true},
		{"a higher index loses", k(true, 3, 0), k(true, 2, 5), false},
		{"same index: fewer forwards win", k(false, 2, 0), k(false, 2, 1), true},
		{"same index: more forwards lose", k(false, 2, 2), k(false, 2, 1), false},
		{"a tie keeps the stored key", k(true, 2, 1), k(true, 2, 1), false},
	} {
		if got := Replaces(c.candidate, c.stored); got != c.want {
			t.Errorf("%s: Replaces = %v", c.what, got)
		}
	}
}

func errCode(err error) string {
	var he *httputil.Error
	if errors.As(err, &he) {
		return he.Code
	}
	return ""
}

// TestCheckDeviceKeys: the device keys are the device's own and signed by
// it; what is stored is canonical and has no "unsigned".
func TestCheckDeviceKeys(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	const user, device = "@alice:example.org", "DEV"
	keys := func(edKey string) map[string]any {
		return map[string]any{"user_id": user, "device_id": device, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
			"keys": map[string]string{"ed25519:" + device: edKey}}
	}
	sign := func(obj map[string]any, k ed25519.PrivateKey) json.RawMessage {
		raw, _ := json.Marshal(obj)
		s, err := pdu.SignJSON(raw, user, "ed25519:"+device, k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := keys(pdu.EncodeBase64(pub))
	withUnsigned := sign(good, priv)
	var m map[string]any
	_ = json.Unmarshal(withUnsigned, &m)
	m["unsigned"] = map[string]any{"device_display_name": "x"} // not covered by the signature
	withUnsigned, _ = json.Marshal(m)
	dk, err := checkDeviceKeys(withUnsigned, user, device)
	if err != nil {
		t.Fatal(err)
	}
	if string(dk.ed25519) != string(pub) {
		t.Fatal("wrong ed25519 key")
	}
	canon, _ := pdu.CanonicalJSON(dk.canonical)
	var stored map[string]any
	if string(canon) != string(dk.canonical) || json.Unmarshal(dk.canonical, &stored) != nil || stored["unsigned"] != nil {
		t.Fatalf("stored form %s", dk.canonical)
	}

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		what     string
		raw      json.RawMessage
		user, id string
		code     string
	}{
		{"signed by another key", sign(good, other), user, device, CodeInvalidSignature},
		{"for another user", sign(good, priv), "@bob:example.org", device, httputil.CodeInvalidParam},
		{"for another device", sign(good, priv), user, "OTHER", httputil.CodeInvalidParam},
		{"a key that is not ed25519-sized", sign(keys("AAAA"), priv), user, device, httputil.CodeInvalidParam},
		{"not an object", json.RawMessage(`[1]`), user, device, httputil.CodeBadJSON},
		{"duplicate keys", json.RawMessage(`{"user_id":"a","user_id":"b"}`), user, device, httputil.CodeBadJSON},
	} {
		if _, err := checkDeviceKeys(c.raw, c.user, c.id); errCode(err) != c.code {
			t.Errorf("%s: %v, want %s", c.what, err, c.code)
		}
	}
}

// TestDecorate: extra signatures merge into "signatures" beside the key's
// own, and "unsigned" is added, in canonical JSON.
func TestDecorate(t *testing.T) {
	key := []byte(`{"keys":{"ed25519:K":"K"},"signatures":{"@a:x":{"ed25519:D":"sigD"}},"user_id":"@a:x"}`)
	out := decorate(key, []storage.KeySignature{
		{SignerUserID: "@a:x", SignerKeyID: "ed25519:S", Signature: "sigS"},
		{SignerUserID: "@b:y", SignerKeyID: "ed25519:U", Signature: "sigU"},
	}, map[string]any{"device_display_name": "<phone>"})
	want := `{"keys":{"ed25519:K":"K"},"signatures":{"@a:x":{"ed25519:D":"sigD","ed25519:S":"sigS"},"@b:y":{"ed25519:U":"sigU"}},"unsigned":{"device_display_name":"<phone>"},"user_id":"@a:x"}`
	if string(out) != want {
		t.Fatalf("decorate:\n got %s\nwant %s", out, want)
	}
	if got := decorate(key, nil, nil); string(got) != string(key) {
		t.Fatalf("nothing to add changed the key: %s", got)
	}
}

// TestDeliveriesFor: "*" reaches every known device not named on its own;
// unknown devices get nothing.
func TestDeliveriesFor(t *testing.T) {
	known := []storage.Device{{DeviceID: "A"}, {DeviceID: "B"}, {DeviceID: "C"}}
	got := deliveriesFor("@u:x", map[string]json.RawMessage{
		"*": json.RawMessage(`{"to":"all"}`), "B": json.RawMessage(`{"to":"B"}`), "GONE": json.RawMessage(`{}`),
	}, known)
	byDevice := map[string]string{}
	for _, d := range got {
		if _, dup := byDevice[d.DeviceID]; dup {
			t.Fatalf("device %s got two messages", d.DeviceID)
		}
		byDevice[d.DeviceID] = string(d.Content)
	}
	want := map[string]string{"A": `{"to":"all"}`, "B": `{"to":"B"}`, "C": `{"to":"all"}`}
	if len(byDevice) != len(want) {
		t.Fatalf("deliveries %v, want %v", byDevice, want)
	}
	for k, v := range want {
		if byDevice[k] != v {
			t.Fatalf("deliveries %v, want %v", byDevice, want)
		}
	}
}

// TestToDeviceEDUsSplit: messages for one server are split among EDUs of
// about softMaxEDUBytes, each with its own message_id, without losing or
// repeating a message; a small batch is one EDU.
func TestToDeviceEDUsSplit(t *testing.T) {
	big := json.RawMessage(`{"ciphertext":"` + strings.Repeat("x", 5000) + `"}`)
	msgs := map[string]map[string]json.RawMessage{}
	for u := range 5 {
		user := fmt.Sprintf("@u%d:remote.example", u)
		msgs[user] = map[string]json.RawMessage{}
		for d := range 10 {
			msgs[user][fmt.Sprintf("DEV%d", d)] = big
		}
	}
	edus := toDeviceEDUs("@a:example.org", "m.room.encrypted", msgs)
	if len(edus) < 4 {
		t.Fatalf("%d EDUs for 250 kB", len(edus))
	}
	seen, ids := map[string]bool{}, map[string]bool{}
	for _, raw := range edus {
		if len(raw) > softMaxEDUBytes+6000 {
			t.Fatalf("an EDU of %d bytes", len(raw))
		}
		var c directToDevice
		if err := json.Unmarshal(raw, &c); err != nil || c.Sender != "@a:example.org" || c.Type != "m.room.encrypted" || ids[c.MessageID] {
			t.Fatalf("EDU %.200s: %v", raw, err)
		}
		ids[c.MessageID] = true
		for u, ds := range c.Messages {
			for d := range ds {
				if seen[u+d] {
					t.Fatalf("%s %s twice", u, d)
				}
				seen[u+d] = true
			}
		}
	}
	if len(seen) != 50 {
		t.Fatalf("%d messages sent, want 50", len(seen))
	}
	if n := len(toDeviceEDUs("@a:example.org", "m.x", map[string]map[string]json.RawMessage{"@b:r.example": {"*": json.RawMessage(`{}`)}})); n != 1 {
		t.Fatalf("%d EDUs for one message", n)
	}
}
