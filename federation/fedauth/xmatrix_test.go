package fedauth

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestParseXMatrix(t *testing.T) {
	full := Header{Origin: "origin.example.com", Destination: "dest.example.com", Key: "ed25519:key1", Sig: "ABC+/def"}
	tests := []struct {
		name  string
		value string
		want  Header
	}{
		{"spec example", `X-Matrix origin="origin.example.com",destination="dest.example.com",key="ed25519:key1",sig="ABC+/def"`, full},
		{"unquoted values with colons and slashes", `X-Matrix origin=origin.example.com,destination=dest.example.com,key=ed25519:key1,sig=ABC+/def`, full},
		{"scheme and names in any case", `x-matrix ORIGIN="origin.example.com",Destination="dest.example.com",KEY="ed25519:key1",Sig="ABC+/def"`, full},
		{"any order", `X-Matrix sig="ABC+/def",key="ed25519:key1",destination="dest.example.com",origin="origin.example.com"`, full},
		{"spaces and tabs around commas and equals", "X-Matrix   origin = \"origin.example.com\" ,\tdestination=\"dest.example.com\"\t, key=\"ed25519:key1\" , sig=\"ABC+/def\"  ", full},
		{"empty list elements", `X-Matrix ,origin="origin.example.com",,destination="dest.example.com",key="ed25519:key1",sig="ABC+/def",`, full},
		{"escapes in quoted values", `X-Matrix origin="origin\.example.com",destination="dest.example.com",key="ed25519:\k\e\y1",sig="ABC+/def"`, full},
		{"unknown parameters ignored", `X-Matrix origin="origin.example.com",destination="dest.example.com",key="ed25519:key1",sig="ABC+/def",extra="x, y",other=z`, full},
		{"no destination (before Matrix 1.3)", `X-Matrix origin=origin.example.com,key="ed25519:key1",sig="ABC+/def"`,
			Header{Origin: "origin.example.com", Key: "ed25519:key1", Sig: "ABC+/def"}},
		{"IPv6 server name with port, unquoted", `X-Matrix origin=[::1]:8448,destination="127.0.0.1:8448",key="ed25519:a_1",sig=c2ln`,
			Header{Origin: "[::1]:8448", Destination: "127.0.0.1:8448", Key: "ed25519:a_1", Sig: "c2ln"}},
		{"escaped quote and backslash", `X-Matrix origin="a\"b\\c",key=k,sig=s`, Header{Origin: `a"b\c`, Key: "k", Sig: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseXMatrix(tt.value)
			if err != nil {
				t.Fatalf("ParseXMatrix(%q): %v", tt.value, err)
			}
			if got != tt.want {
				t.Fatalf("ParseXMatrix(%q) = %+v, want %+v", tt.value, got, tt.want)
			}
			// What String writes parses back to the same header.
			again, err := ParseXMatrix(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q through %q: %+v, %v", tt.value, got.String(), again, err)
			}
		})
	}
}

func TestParseXMatrixErrors(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"bearer token", `Bearer abc`, "not an X-Matrix"},
		{"empty", ``, "not an X-Matrix"},
		{"scheme only", `X-Matrix`, `missing or empty parameter "origin"`},
		{"no key", `X-Matrix origin=a,sig=b`, `missing or empty parameter "key"`},
		{"no sig", `X-Matrix origin=a,key=b`, `missing or empty parameter "sig"`},
		{"empty quoted origin", `X-Matrix origin="",key=k,sig=s`, `missing or empty parameter "origin"`},
		{"empty destination", `X-Matrix origin=o,destination="",key=k,sig=s`, `empty parameter "destination"`},
		{"duplicate parameter", `X-Matrix origin=a,origin=b,key=k,sig=s`, `"origin" appears twice`},
		{"duplicate in other case", `X-Matrix origin=a,ORIGIN=a,key=k,sig=s`, `"origin" appears twice`},
		{"no equals", `X-Matrix origin,key=k,sig=s`, `has no '='`},
		{"no value", `X-Matrix origin=,key=k,sig=s`, `unexpected ','`},
		{"value missing at end", `X-Matrix origin=a,key=k,sig=`, `missing value`},
		{"unterminated quote", `X-Matrix origin="abc,key=k,sig=s`, "unterminated"},
		{"backslash at the end", `X-Matrix origin=o,key=k,sig="abc\`, "ends in a backslash"},
		{"space instead of comma", `X-Matrix origin=a key=k,sig=s`, "separated by commas"},
		{"semicolon separator", `X-Matrix origin=a;key=k;sig=s`, "separated by commas"},
		{"control character in quotes", "X-Matrix origin=\"a\x01b\",key=k,sig=s", "invalid character"},
		{"escaped control character", "X-Matrix origin=\"a\\\x01\",key=k,sig=s", "invalid escaped character"},
		{"bad name", `X-Matrix (origin)=a,key=k,sig=s`, "parameter name"},
		{"quote inside an unquoted value", `X-Matrix origin=a"b",key=k,sig=s`, "separated by commas"},
		{"too long", "X-Matrix origin=" + strings.Repeat("a", 9000) + ",key=k,sig=s", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseXMatrix(tt.value)
			if err == nil {
				t.Fatalf("ParseXMatrix(%q) = %+v, want an error containing %q", tt.value, h, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseXMatrix(%q) error %q, want it to contain %q", tt.value, err, tt.want)
			}
		})
	}
	if _, err := ParseXMatrix("Bearer x"); !errors.Is(err, ErrNotXMatrix) {
		t.Fatalf("a Bearer header: %v, want ErrNotXMatrix", err)
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"pdus":[],"edus":[{"edu_type":"m.typing","content":{"a":1}}]}`)
	const uri = "/_matrix/federation/v1/send/txn1?a=1&b=%2F"
	h, err := Sign("PUT", uri, "origin.test", "dest.test", body, "ed25519:k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if h.Origin != "origin.test" || h.Destination != "dest.test" || h.Key != "ed25519:k1" || h.Sig == "" {
		t.Fatalf("header %+v", h)
	}
	// The header goes through its text form, as on the wire.
	parsed, err := ParseXMatrix(h.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(parsed, "PUT", uri, "dest.test", body, pub); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// The body's formatting does not matter: the signature covers its
	// canonical form.
	spaced := []byte(`{ "edus": [ {"content": {"a": 1}, "edu_type": "m.typing"} ], "pdus": [] }`)
	if err := Verify(parsed, "PUT", uri, "dest.test", spaced, pub); err != nil {
		t.Fatalf("verify with reformatted body: %v", err)
	}

	// Anything else changed breaks the signature.
	otherPub, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		name                 string
		method, uri, dest    string
		body                 []byte
		pub                  ed25519.PublicKey
		h                    Header
		wantBadSignatureType bool
	}{
		{"method", "POST", uri, "dest.test", body, pub, parsed, true},
		{"uri", "PUT", "/_matrix/federation/v1/send/txn2?a=1&b=%2F", "dest.test", body, pub, parsed, true},
		{"query", "PUT", "/_matrix/federation/v1/send/txn1?a=1&b=/", "dest.test", body, pub, parsed, true},
		{"destination", "PUT", uri, "other.test", body, pub, parsed, true},
		{"body", "PUT", uri, "dest.test", []byte(`{"pdus":[],"edus":[]}`), pub, parsed, true},
		{"no body", "PUT", uri, "dest.test", nil, pub, parsed, true},
		{"origin", "PUT", uri, "dest.test", body, pub, Header{Origin: "evil.test", Key: parsed.Key, Sig: parsed.Sig}, false},
		{"key", "PUT", uri, "dest.test", body, otherPub, parsed, true},
		{"signature", "PUT", uri, "dest.test", body, pub, Header{Origin: parsed.Origin, Key: parsed.Key, Sig: pdu.EncodeBase64(make([]byte, 64))}, true},
	} {
		err := Verify(c.h, c.method, c.uri, c.dest, c.body, c.pub)
		if err == nil {
			t.Errorf("changed %s: the signature still verifies", c.name)
			continue
		}
		if c.wantBadSignatureType && !errors.Is(err, pdu.ErrBadSignature) {
			t.Errorf("changed %s: %v, want ErrBadSignature", c.name, err)
		}
	}
	if err := Verify(Header{Origin: "origin.test", Key: "ed25519:k1", Sig: "!!"}, "PUT", uri, "dest.test", body, pub); err == nil {
		t.Error("a signature that is not base64 verified")
	}
	if err := Verify(parsed, "PUT", uri, "dest.test", []byte(`{"a":`), pub); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("a body that is not JSON: %v", err)
	}
	if _, err := Sign("PUT", uri, "origin.test", "dest.test", []byte("nope"), "ed25519:k1", priv); err == nil {
		t.Error("signed a body that is not JSON")
	}
}

// TestSignedObjectShape checks the signed object against step 1 of the
// spec's "Request Authentication": method, uri, origin, destination, and
// content only when there is a body.
func TestSignedObjectShape(t *testing.T) {
	obj, err := RequestJSON("GET", "/_matrix/federation/v1/query/profile?user_id=%40a%3Ab", "o", "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"method":"GET","uri":"/_matrix/federation/v1/query/profile?user_id=%40a%3Ab","origin":"o","destination":"d"}`; string(obj) != want {
		t.Fatalf("RequestJSON = %s, want %s", obj, want)
	}
	obj, err = RequestJSON("POST", "/x", "o", "d", []byte(`{"b":1,"a":[true]}`))
	if err != nil {
		t.Fatal(err)
	}
	canon, err := pdu.CanonicalJSON(obj)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"content":{"a":[true],"b":1},"destination":"d","method":"POST","origin":"o","uri":"/x"}`; string(canon) != want {
		t.Fatalf("canonical RequestJSON = %s, want %s", canon, want)
	}
}
