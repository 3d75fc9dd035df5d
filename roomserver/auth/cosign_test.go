package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// coSign adds a signature of the server to the event, as a resident server
// does to a restricted join in send_join: the signature covers the redacted
// event, like the sender's own.
func coSign(t testing.TB, ev *pdu.Event, server string) *pdu.Event {
	t.Helper()
	redacted, err := pdu.Redact(ev.JSON(), ev.Version())
	if err != nil {
		t.Fatal(err)
	}
	signedRedacted, err := pdu.SignJSON(redacted, server, testKeyID, keyFor(server))
	if err != nil {
		t.Fatal(err)
	}
	var full, sr map[string]any
	decode := func(b []byte, v any) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	decode(ev.JSON(), &full)
	decode(signedRedacted, &sr)
	full["signatures"].(map[string]any)[server] = sr["signatures"].(map[string]any)[server]
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pdu.ParseEvent(b, ev.Version())
	if err != nil {
		t.Fatal(err)
	}
	if out.EventID() != ev.EventID() {
		t.Fatalf("co-signing changed the event ID")
	}
	if err := out.VerifySignature(server, testKeyID, keyFor(server).Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("co-signature does not verify: %v", err)
	}
	return out
}
