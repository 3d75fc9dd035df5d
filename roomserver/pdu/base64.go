package pdu

import (
	"encoding/base64"
	"errors"
	"strings"
)

// EncodeBase64 encodes b as unpadded standard Base64 (appendices "Unpadded
// Base64"), the encoding of hashes, signatures and keys.
func EncodeBase64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// EncodeBase64URL encodes b as URL-safe unpadded Base64.
func EncodeBase64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var errBadBase64 = errors.New("invalid base64")

// DecodeBase64 decodes unpadded Base64 and, as the appendices ask ("SHOULD
// accept input with or without padding") and Synapse does, also padded
// input and the URL-safe alphabet.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return nil, errBadBase64
	}
	return b, nil
}
