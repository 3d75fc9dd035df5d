package fedauth

import (
	"crypto/ed25519"
	"testing"
)

// The cost of authenticating one inbound request, header parsing and
// signature check, for a /send-sized body (about 20 KiB).
func BenchmarkParseAndVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	body := []byte(`{"origin":"a.test","pdus":[` + repeatPDU(40) + `],"edus":[]}`)
	const uri = "/_matrix/federation/v1/send/1234"
	h, err := Sign("PUT", uri, "a.test", "b.test", body, "ed25519:k", priv)
	if err != nil {
		b.Fatal(err)
	}
	header := h.String()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		parsed, err := ParseXMatrix(header)
		if err != nil {
			b.Fatal(err)
		}
		if err := Verify(parsed, "PUT", uri, "b.test", body, pub); err != nil {
			b.Fatal(err)
		}
	}
}

func repeatPDU(n int) string {
	const pdu = `{"type":"m.room.message","sender":"@u:a.test","room_id":"!r:a.test","content":{"msgtype":"m.text","body":"hello world, a message of moderate length for the benchmark"},"depth":12,"prev_events":["$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"],"auth_events":["$abc","$def","$ghi"],"origin_server_ts":1700000000000,"hashes":{"sha256":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"},"signatures":{"a.test":{"ed25519:k":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGabcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}}}`
	s := pdu
	for range n - 1 {
		s += "," + pdu
	}
	return s
}
