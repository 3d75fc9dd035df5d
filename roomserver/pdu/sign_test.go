package pdu

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func TestBase64(t *testing.T) {
	// appendices "Unpadded Base64" examples.
	for in, want := range map[string]string{"": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"} {
		if got := EncodeBase64([]byte(in)); got != want {
			t.Errorf("EncodeBase64(%q) = %q, want %q", in, got, want)
		}
		for _, enc := range []string{want, want + strings.Repeat("=", (4-len(want)%4)%4)} {
			got, err := DecodeBase64(enc)
			if err != nil || string(got) != in {
				t.Errorf("DecodeBase64(%q) = %q, %v", enc, got, err)
			}
		}
	}
	if got := EncodeBase64URL([]byte{0xfb, 0xff}); got != "-_8" {
		t.Errorf("EncodeBase64URL = %q", got)
	}
	if got, err := DecodeBase64("-_8"); err != nil || string(got) != "\xfb\xff" {
		t.Errorf("DecodeBase64(url-safe) = %q, %v", got, err)
	}
	for _, bad := range []string{"Z", "Zg=a", "Zm9v!", "Zm\n9v", "+-"} {
		if _, err := DecodeBase64(bad); err == nil {
			t.Errorf("DecodeBase64(%q) accepted", bad)
		}
	}
}

func TestVerifyJSONFailures(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	signed, err := SignJSON([]byte(`{"a":1,"unsigned":{"x":1}}`), "domain", "ed25519:1", key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(signed), `"unsigned":{"x":1}`) {
		t.Errorf("unsigned not kept: %s", signed)
	}
	// unsigned is not covered: changing it keeps the signature valid.
	changed := strings.Replace(string(signed), `"x":1`, `"x":2`, 1)
	if err := VerifyJSON([]byte(changed), "domain", "ed25519:1", pub); err != nil {
		t.Errorf("changing unsigned broke the signature: %v", err)
	}
	otherPub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	sig := "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
	for _, tc := range []struct {
		name, obj, server, keyID string
		pub                      ed25519.PublicKey
		is                       error
		msg                      string
	}{
		{"tampered", strings.Replace(string(signed), `"a":1`, `"a":2`, 1), "domain", "ed25519:1", pub, ErrBadSignature, ""},
		{"wrong key", string(signed), "domain", "ed25519:1", otherPub, ErrBadSignature, ""},
		{"other server", string(signed), "other", "ed25519:1", pub, ErrNoSignature, "none from other"},
		{"other key ID", string(signed), "domain", "ed25519:2", pub, ErrNoSignature, "with key ed25519:2"},
		{"no signatures", `{"a":1}`, "domain", "ed25519:1", pub, ErrNoSignature, "no signatures"},
		{"bad base64", `{"signatures":{"domain":{"ed25519:1":"!!"}}}`, "domain", "ed25519:1", pub, ErrBadSignature, "invalid base64"},
		{"short signature", `{"signatures":{"domain":{"ed25519:1":"AAAA"}}}`, "domain", "ed25519:1", pub, ErrBadSignature, "3 bytes, want 64"},
		{"padded signature still checked", `{"signatures":{"domain":{"ed25519:1":"` + sig + `=="}}}`, "domain", "ed25519:1", pub, nil, ""},
		{"signatures not an object", `{"signatures":[]}`, "domain", "ed25519:1", pub, nil, "signatures: not an object"},
		{"server entry not an object", `{"signatures":{"domain":"x"}}`, "domain", "ed25519:1", pub, nil, "signatures.domain: not an object"},
		{"signature not a string", `{"signatures":{"domain":{"ed25519:1":1}}}`, "domain", "ed25519:1", pub, nil, "signatures.domain.ed25519:1: not a string"},
		{"unknown algorithm", string(signed), "domain", "curve:1", pub, nil, "only ed25519"},
		{"bad public key", string(signed), "domain", "ed25519:1", pub[:5], nil, "5 bytes"},
		{"not an object", `[1]`, "domain", "ed25519:1", pub, nil, "not a JSON object"},
		{"not JSON", `{"a":`, "domain", "ed25519:1", pub, nil, "bad JSON"},
	} {
		err := VerifyJSON([]byte(tc.obj), tc.server, tc.keyID, tc.pub)
		if tc.is == nil && tc.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v %q", tc.name, err, tc.is, tc.msg)
		}
	}
}

func TestSignJSONMergesSignatures(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	in := `{"b":1,"signatures":{"a.example":{"ed25519:x":"keep"},"domain":{"ed25519:0":"old","ed25519:1":"replace-me"}}}`
	out, err := SignJSON([]byte(in), "domain", "ed25519:1", key)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"a.example":{"ed25519:x":"keep"}`, `"ed25519:0":"old"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lost %s: %s", want, out)
		}
	}
	if strings.Contains(string(out), "replace-me") {
		t.Errorf("old signature kept: %s", out)
	}
	if err := VerifyJSON(out, "domain", "ed25519:1", pub); err != nil {
		t.Error(err)
	}
	// A server name and key ID that need escaping survive the round trip.
	out, err = SignJSON([]byte(`{}`), "we\"ird", "ed25519:\n", key)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyJSON(out, "we\"ird", "ed25519:\n", pub); err != nil {
		t.Errorf("escaped names: %v (%s)", err, out)
	}
	for _, tc := range []struct{ obj, keyID, msg string }{
		{`{}`, "rsa:1", "only ed25519"},
		{`[]`, "ed25519:1", "not a JSON object"},
		{`{"a":}`, "ed25519:1", "bad JSON"},
		{`{"signatures":1}`, "ed25519:1", "signatures: not an object"},
		{`{"signatures":{"domain":[]}}`, "ed25519:1", "signatures.domain: not an object"},
	} {
		if _, err := SignJSON([]byte(tc.obj), "domain", tc.keyID, key); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("SignJSON(%s, %s) = %v, want %q", tc.obj, tc.keyID, err, tc.msg)
		}
	}
	if _, err := SignJSON([]byte(`{}`), "domain", "ed25519:1", key[:10]); err == nil {
		t.Error("short private key accepted")
	}
}

func TestEventVerifySignatureFailures(t *testing.T) {
	key := specKey(t)
	pub := key.Public().(ed25519.PublicKey)
	v10, _ := GetRoomVersion("10")
	_, msg := buildChain(t, v10)
	if err := msg.VerifySignature("other.example", "ed25519:1", pub); !errors.Is(err, ErrNoSignature) {
		t.Errorf("other server: %v", err)
	}
	// Change an essential key: the signature no longer verifies; change a
	// non-essential one: the signature holds but the content hash fails.
	essential := strings.Replace(string(msg.JSON()), `"depth":2`, `"depth":3`, 1)
	ev, err := ParseEvent([]byte(essential), v10)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.VerifySignature("a.example", "ed25519:1", pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered depth: %v", err)
	}
	body := strings.Replace(string(msg.JSON()), `"body":"hi"`, `"body":"ho"`, 1)
	ev, err = ParseEvent([]byte(body), v10)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.VerifySignature("a.example", "ed25519:1", pub); err != nil {
		t.Errorf("tampered body must keep a valid signature: %v", err)
	}
	if err := ev.CheckContentHash(); !errors.Is(err, ErrContentHashMismatch) {
		t.Errorf("tampered body content hash: %v", err)
	}
}
