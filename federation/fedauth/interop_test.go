package fedauth

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// TestVerifyPythonSignature checks Verify against an independent
// implementation: the spec's own Python example of authorization_headers,
// run with Python's signedjson (Debian python3-signedjson). CI sets
// MYELIN_REQUIRE_INTEROP=1, making a missing library a failure instead of
// a skip.
func TestVerifyPythonSignature(t *testing.T) {
	const script = `
import sys, json
from signedjson.key import decode_signing_key_base64
from signedjson.sign import sign_json
key = decode_signing_key_base64("ed25519", "k1", sys.argv[1])
request_json = {"method": "POST", "uri": sys.argv[2], "origin": "origin.test:8448", "destination": "dest.test"}
request_json["content"] = json.loads(sys.argv[3])
signed = sign_json(request_json, "origin.test:8448", key)
for k, sig in signed["signatures"]["origin.test:8448"].items():
    print('X-Matrix origin="%s",destination="%s",key="%s",sig="%s"' % ("origin.test:8448", "dest.test", k, sig))
`
	if err := exec.Command("/usr/bin/python3", "-c", "import signedjson.sign").Run(); err != nil {
		if os.Getenv("MYELIN_REQUIRE_INTEROP") != "" {
			t.Fatalf("python3-signedjson is required (MYELIN_REQUIRE_INTEROP is set): %v", err)
		}
		t.Skip("python3-signedjson not installed (apt-get install python3-signedjson)")
	}
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	const uri = "/_matrix/key/v2/query?x=%C3%A9&y=1"
	body := `{"server_keys":{"a.test":{"ed25519:x":{"minimum_valid_until_ts":1234567890}}},"é":"ü"}`
	out, err := exec.Command("/usr/bin/python3", "-c", script, pdu.EncodeBase64(seed), uri, body).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	h, err := ParseXMatrix(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("parsing Python's header %q: %v", out, err)
	}
	if err := Verify(h, "POST", uri, "dest.test", []byte(body), priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("Python's signature does not verify: %v", err)
	}
	// And Python's signature is the one we make: ed25519 is deterministic.
	ours, err := Sign("POST", uri, "origin.test:8448", "dest.test", []byte(body), "ed25519:k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if ours != h {
		t.Fatalf("our header %+v, Python's %+v", ours, h)
	}
}
