package e2ee

// Signed key objects as JSON: canonical forms, signature checks, and the
// signatures and "unsigned" data merged in on the way out.

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// CodeInvalidSignature is the spec's errcode for a signature that does not
// verify.
const CodeInvalidSignature = "M_INVALID_SIGNATURE"

func invalidSignature(msg string) *httputil.Error {
	return httputil.NewError(http.StatusBadRequest, CodeInvalidSignature, msg)
}

// canonicalObject returns the JSON object raw as canonical JSON without the
// members named in drop. Anything but a valid object is 400 M_BAD_JSON
// naming what (the field it came from).
func canonicalObject(raw json.RawMessage, what string, drop ...string) ([]byte, error) {
	canon, err := pdu.CanonicalJSON(raw)
	if err != nil {
		return nil, httputil.BadJSON(what + " is not valid JSON: " + err.Error())
	}
	if len(canon) == 0 || canon[0] != '{' {
		return nil, httputil.BadJSON(what + " must be a JSON object")
	}
	if len(drop) == 0 {
		return canon, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(canon, &m); err != nil {
		return nil, httputil.BadJSON(what + " is not valid JSON: " + err.Error())
	}
	for _, d := range drop {
		delete(m, d)
	}
	return marshalCanonical(m)
}

// marshalCanonical encodes v as canonical JSON. encoding/json sorts map keys
// but escapes <, > and & in strings; the canonical pass undoes that.
func marshalCanonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return pdu.CanonicalJSON(b)
}

// ed25519Key decodes an unpadded base64 ed25519 public key.
func ed25519Key(s string) (ed25519.PublicKey, bool) {
	b, err := pdu.DecodeBase64(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b), true
}

// verify checks the signature of obj by userID's key keyID ("ed25519:...")
// made with pub. A missing or wrong signature is 400 M_INVALID_SIGNATURE
// saying what was being checked.
func verify(obj []byte, userID, keyID string, pub ed25519.PublicKey, what string) error {
	err := pdu.VerifyJSON(obj, userID, keyID, pub)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pdu.ErrNoSignature):
		return invalidSignature(what + " has no signature by " + keyID)
	case errors.Is(err, pdu.ErrBadSignature):
		return invalidSignature(what + ": the signature by " + keyID + " does not verify")
	default:
		return invalidSignature(what + ": " + err.Error())
	}
}

// signatureBy returns obj's signature by userID's key keyID, "" if none.
func signatureBy(obj []byte, userID, keyID string) string {
	var o struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if json.Unmarshal(obj, &o) != nil {
		return ""
	}
	return o.Signatures[userID][keyID]
}

// decorate returns a stored key object with extra signatures merged into
// "signatures" and, when unsigned is not nil, an "unsigned" object. The
// stored object is canonical JSON we wrote, so decoding it cannot fail;
// if it somehow does, the object goes out as stored.
func decorate(keyJSON []byte, extra []storage.KeySignature, unsigned map[string]any) json.RawMessage {
	if len(extra) == 0 && unsigned == nil {
		return keyJSON
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(keyJSON, &m) != nil {
		return keyJSON
	}
	if len(extra) > 0 {
		sigs := map[string]map[string]string{}
		if raw, ok := m["signatures"]; ok && json.Unmarshal(raw, &sigs) != nil {
			return keyJSON
		}
		for _, s := range extra {
			if sigs[s.SignerUserID] == nil {
				sigs[s.SignerUserID] = map[string]string{}
			}
			sigs[s.SignerUserID][s.SignerKeyID] = s.Signature
		}
		b, err := json.Marshal(sigs)
		if err != nil {
			return keyJSON
		}
		m["signatures"] = b
	}
	if unsigned != nil {
		b, err := json.Marshal(unsigned)
		if err != nil {
			return keyJSON
		}
		m["unsigned"] = b
	}
	out, err := marshalCanonical(m)
	if err != nil {
		return keyJSON
	}
	return out
}

// splitUserID returns the localpart and server of a user ID, ok false when
// it is not one ("@localpart:server", both non-empty).
func splitUserID(userID string) (localpart, server string, ok bool) {
	rest, found := strings.CutPrefix(userID, "@")
	if !found {
		return "", "", false
	}
	localpart, server, ok = strings.Cut(rest, ":")
	return localpart, server, ok && localpart != "" && server != ""
}
