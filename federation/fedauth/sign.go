package fedauth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// ErrBadContent is returned (wrapped) when a request body is not JSON, so
// cannot be part of the signed object.
var ErrBadContent = errors.New("the request body is not valid JSON")

// RequestJSON returns the JSON object a request's signature covers (step
// 1 of "Request Authentication"): the method, the request target uri (the
// path from "/_matrix/..." with the query string, exactly as sent on the
// request line), the origin and destination server names (before any
// delegation), and content, the request body, absent when the body is
// empty and otherwise required to be JSON. The result is not yet
// canonical; signing canonicalises it.
func RequestJSON(method, uri, origin, destination string, content []byte) ([]byte, error) {
	return appendRequestJSON(nil, method, uri, origin, destination, content, nil)
}

// appendRequestJSON writes the object by hand rather than through
// encoding/json, which would validate and compact the body once more (it
// was most of the cost of checking a large request). With sig set, the
// object also holds {"signatures": {origin: {key: sig}}}.
func appendRequestJSON(out []byte, method, uri, origin, destination string, content []byte, sig *Header) ([]byte, error) {
	if len(content) > 0 && !json.Valid(content) {
		return nil, ErrBadContent
	}
	str := func(s string) []byte {
		b, _ := json.Marshal(s) // a string always encodes
		return b
	}
	out = append(out, `{"method":`...)
	out = append(out, str(method)...)
	out = append(out, `,"uri":`...)
	out = append(out, str(uri)...)
	out = append(out, `,"origin":`...)
	out = append(out, str(origin)...)
	out = append(out, `,"destination":`...)
	out = append(out, str(destination)...)
	if len(content) > 0 {
		out = append(out, `,"content":`...)
		out = append(out, content...)
	}
	if sig != nil {
		out = append(out, `,"signatures":{`...)
		out = append(out, str(origin)...)
		out = append(out, `:{`...)
		out = append(out, str(sig.Key)...)
		out = append(out, ':')
		out = append(out, str(sig.Sig)...)
		out = append(out, `}}`...)
	}
	return append(out, '}'), nil
}

// Sign signs a request as origin with the key keyID and returns the
// X-Matrix header to send with it.
func Sign(method, uri, origin, destination string, content []byte, keyID string, key ed25519.PrivateKey) (Header, error) {
	obj, err := RequestJSON(method, uri, origin, destination, content)
	if err != nil {
		return Header{}, err
	}
	signed, err := pdu.SignJSON(obj, origin, keyID, key)
	if err != nil {
		return Header{}, fmt.Errorf("signing the request: %w", err)
	}
	var s struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(signed, &s); err != nil {
		return Header{}, fmt.Errorf("reading the request signature: %w", err)
	}
	return Header{Origin: origin, Destination: destination, Key: keyID, Sig: s.Signatures[origin][keyID]}, nil
}

// Verify checks that h signs the request received by destination (this
// server's name, whatever h.Destination says: the caller checks that they
// match) with pub, the public key of h.Origin's key h.Key. The error wraps
// pdu.ErrBadSignature when the signature does not match, ErrBadContent
// when the body is not JSON.
func Verify(h Header, method, uri, destination string, content []byte, pub ed25519.PublicKey) error {
	// The signature goes in as the object's "signatures" member, where
	// pdu.VerifyJSON looks for it.
	obj, err := appendRequestJSON(nil, method, uri, h.Origin, destination, content, &h)
	if err != nil {
		return err
	}
	return pdu.VerifyJSON(obj, h.Origin, h.Key, pub)
}
