package pdu

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
)

// Signing JSON (appendices "Signing JSON", "Checking for a Signature").

var (
	// ErrNoSignature: the object has no signature from the server and key asked for.
	ErrNoSignature = errors.New("signature missing")
	// ErrBadSignature: a signature is present but does not verify.
	ErrBadSignature = errors.New("signature does not verify")
)

// SignJSON signs the JSON object obj as serverName with the ed25519 key
// named keyID ("ed25519:<version>") and returns obj, canonical, with the
// signature added under signatures[serverName][keyID]. The signature covers
// obj without "signatures" and "unsigned"; both are kept in the result.
func SignJSON(obj []byte, serverName, keyID string, key ed25519.PrivateKey) ([]byte, error) {
	if err := checkSigningKey(keyID, key); err != nil {
		return nil, err
	}
	_, top, err := canonicalize(obj, false)
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("signing JSON: not a JSON object")
	}
	return signMembers(top, serverName, keyID, key)
}

// signMembers signs the canonical object whose members are top and
// returns the whole object with the signature merged into "signatures".
func signMembers(top []member, serverName, keyID string, key ed25519.PrivateKey) ([]byte, error) {
	sig := ed25519.Sign(key, appendObjectWithout(nil, top, "signatures", "unsigned"))
	return mergeSignature(top, serverName, keyID, EncodeBase64(sig))
}

// mergeSignature returns the canonical object whose members are top with
// sig added under signatures[serverName][keyID].
func mergeSignature(top []member, serverName, keyID, sig string) ([]byte, error) {
	var sigs []byte
	for _, m := range top {
		if keyEquals(m.key, "signatures") {
			sigs = m.val
		}
	}
	sigs, err := withSignature(sigs, serverName, keyID, sig)
	if err != nil {
		return nil, err
	}
	out := []byte(`{"signatures":`)
	out = append(out, sigs...)
	for _, m := range top {
		if keyEquals(m.key, "signatures") {
			continue
		}
		out = append(out, ',', '"')
		out = append(out, m.key...)
		out = append(out, '"', ':')
		out = append(out, m.val...)
	}
	out = append(out, '}')
	// One more pass puts "signatures" in its sorted place.
	return CanonicalJSON(out)
}

func checkSigningKey(keyID string, key ed25519.PrivateKey) error {
	if !strings.HasPrefix(keyID, "ed25519:") {
		return fmt.Errorf("signing key ID %q: only ed25519 keys are supported", keyID)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing key %q: %d bytes, want %d", keyID, len(key), ed25519.PrivateKeySize)
	}
	return nil
}

// withSignature returns the canonical signatures object sigs (nil if the
// object had none) with signatures[server][keyID] = sig; the result is not
// necessarily sorted.
func withSignature(sigs []byte, server, keyID, sig string) ([]byte, error) {
	serverKey := appendString(nil, []byte(server))
	serverInner := serverKey[1 : len(serverKey)-1]
	keyQuoted := appendString(nil, []byte(keyID))
	keyInner := keyQuoted[1 : len(keyQuoted)-1]
	entry := append(keyQuoted, ':')
	entry = appendString(entry, []byte(sig))

	out := []byte{'{'}
	found := false
	if sigs != nil {
		if sigs[0] != '{' {
			return nil, &FormatError{Field: "signatures", Reason: "not an object"}
		}
		for k, v := range objectMembers(sigs) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, k...)
			out = append(out, '"', ':')
			if string(k) != string(serverInner) {
				out = append(out, v...)
				continue
			}
			found = true
			if v[0] != '{' {
				return nil, &FormatError{Field: "signatures." + server, Reason: "not an object"}
			}
			out = append(out, '{')
			out = append(out, entry...)
			for kk, vv := range objectMembers(v) {
				if string(kk) == string(keyInner) {
					continue
				}
				out = append(out, ',', '"')
				out = append(out, kk...)
				out = append(out, '"', ':')
				out = append(out, vv...)
			}
			out = append(out, '}')
		}
	}
	if !found {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, serverKey...)
		out = append(out, ':', '{')
		out = append(out, entry...)
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

// VerifyJSON checks that the JSON object obj carries a valid signature by
// serverName with the key keyID, made with the public key pub. It returns
// an error wrapping ErrNoSignature or ErrBadSignature, or describing why obj
// could not be checked.
func VerifyJSON(obj []byte, serverName, keyID string, pub ed25519.PublicKey) error {
	_, top, err := canonicalize(obj, false)
	if err != nil {
		return err
	}
	if top == nil {
		return errors.New("verifying JSON: not a JSON object")
	}
	return verifyMembers(top, serverName, keyID, pub)
}

// verifyMembers verifies the signature of a canonical object given as its
// members; the signed bytes are the object without signatures and unsigned.
func verifyMembers(top []member, serverName, keyID string, pub ed25519.PublicKey) error {
	if !strings.HasPrefix(keyID, "ed25519:") {
		return fmt.Errorf("key ID %q: only ed25519 keys are supported", keyID)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("public key %q: %d bytes, want %d", keyID, len(pub), ed25519.PublicKeySize)
	}
	var sigs []byte
	for _, m := range top {
		if keyEquals(m.key, "signatures") {
			sigs = m.val
		}
	}
	sig, err := signatureFrom(sigs, serverName, keyID)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, appendObjectWithout(nil, top, "signatures", "unsigned"), sig) {
		return fmt.Errorf("%w: %s %s", ErrBadSignature, serverName, keyID)
	}
	return nil
}

// signatureFrom finds and decodes signatures[server][keyID].
func signatureFrom(sigs []byte, server, keyID string) ([]byte, error) {
	if sigs == nil {
		return nil, fmt.Errorf("%w: no signatures", ErrNoSignature)
	}
	if sigs[0] != '{' {
		return nil, &FormatError{Field: "signatures", Reason: "not an object"}
	}
	serverKey := appendString(nil, []byte(server))
	byServer := lookup(sigs, string(serverKey[1:len(serverKey)-1]))
	if byServer == nil {
		return nil, fmt.Errorf("%w: none from %s", ErrNoSignature, server)
	}
	if byServer[0] != '{' {
		return nil, &FormatError{Field: "signatures." + server, Reason: "not an object"}
	}
	k := appendString(nil, []byte(keyID))
	v := lookup(byServer, string(k[1:len(k)-1]))
	if v == nil {
		return nil, fmt.Errorf("%w: none from %s with key %s", ErrNoSignature, server, keyID)
	}
	s, ok := decodeString(v)
	if !ok {
		return nil, &FormatError{Field: "signatures." + server + "." + keyID, Reason: "not a string"}
	}
	sig, err := DecodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrBadSignature, server, keyID, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %s %s: %d bytes, want %d", ErrBadSignature, server, keyID, len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}
