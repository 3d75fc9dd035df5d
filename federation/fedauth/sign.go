package fedauth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// requestJSON is the object a request signature covers (step 1 of
// "Request Authentication"). Content is the request body, absent when the
// request has none.
type requestJSON struct {
	Method      string          `json:"method"`
	URI         string          `json:"uri"`
	Origin      string          `json:"origin"`
	Destination string          `json:"destination"`
	Content     json.RawMessage `json:"content,omitempty"`
}

// RequestJSON returns the JSON object a request's signature covers: the
// method, the request target uri (the path from "/_matrix/..." with the
// query string, exactly as sent on the request line), the origin and
// destination server names (before any delegation), and content, the
// request body, which must be JSON when not empty. The result is not yet
// canonical; signing canonicalises it.
func RequestJSON(method, uri, origin, destination string, content []byte) ([]byte, error) {
	if err := checkContent(content); err != nil {
		return nil, err
	}
	return json.Marshal(requestJSON{Method: method, URI: uri, Origin: origin, Destination: destination, Content: content})
}

func checkContent(content []byte) error {
	if len(content) > 0 && !json.Valid(content) {
		return errors.New("the request body is not valid JSON")
	}
	return nil
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
// pdu.ErrBadSignature when the signature does not match.
func Verify(h Header, method, uri, destination string, content []byte, pub ed25519.PublicKey) error {
	if err := checkContent(content); err != nil {
		return err
	}
	// The signature goes in as the object's "signatures" member, where
	// pdu.VerifyJSON looks for it.
	withSig, err := json.Marshal(struct {
		requestJSON
		Signatures map[string]map[string]string `json:"signatures"`
	}{
		requestJSON: requestJSON{Method: method, URI: uri, Origin: h.Origin, Destination: destination, Content: content},
		Signatures:  map[string]map[string]string{h.Origin: {h.Key: h.Sig}},
	})
	if err != nil {
		return err
	}
	return pdu.VerifyJSON(withSig, h.Origin, h.Key, pub)
}
