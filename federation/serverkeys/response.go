package serverkeys

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// MaxValidity caps how far ahead a key response can make a key valid: the
// spec's "Servers MUST use the lesser of [valid_until_ts] and 7 days into
// the future", so that a stolen key published as valid for years can still
// be revoked.
const MaxValidity = 7 * 24 * time.Hour

// maxKeysPerResponse bounds the keys taken from one response (a server has
// one current key and a few old ones).
const maxKeysPerResponse = 100

// keyResponse is GET /_matrix/key/v2/server
// (data/api/server-server/definitions/keys.yaml).
type keyResponse struct {
	ServerName   string `json:"server_name"`
	ValidUntilTS *int64 `json:"valid_until_ts"`
	VerifyKeys   map[string]struct {
		Key string `json:"key"`
	} `json:"verify_keys"`
	OldVerifyKeys map[string]struct {
		Key       string `json:"key"`
		ExpiredTS *int64 `json:"expired_ts"`
	} `json:"old_verify_keys"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// checked is a key response that passed checkResponse.
type checked struct {
	raw          []byte
	serverName   string
	validUntilTS int64 // as the response says
	keys         []storage.ServerKey
}

// checkResponse parses raw as serverName's key response, fetched at now,
// and checks it as the spec and Synapse do: the right server_name, a
// valid_until_ts, well-formed ed25519 keys (other algorithms are skipped),
// and signed by serverName with at least one of its verify_keys, every
// such signature verifying. Keys of current keys are valid until the
// lesser of valid_until_ts and now + MaxValidity; old keys until their
// expired_ts.
func checkResponse(raw []byte, serverName string, now time.Time) (*checked, error) {
	var r keyResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("key response of %s is not the JSON expected: %v", serverName, err)
	}
	if r.ServerName != serverName {
		return nil, fmt.Errorf("key response of %s names server %q", serverName, truncate(r.ServerName))
	}
	if r.ValidUntilTS == nil {
		return nil, fmt.Errorf("key response of %s has no valid_until_ts", serverName)
	}
	if len(r.VerifyKeys)+len(r.OldVerifyKeys) > maxKeysPerResponse {
		return nil, fmt.Errorf("key response of %s lists more than %d keys", serverName, maxKeysPerResponse)
	}
	c := &checked{raw: raw, serverName: serverName, validUntilTS: *r.ValidUntilTS}
	capped := min(*r.ValidUntilTS, now.Add(MaxValidity).UnixMilli())
	fetched := now.UnixMilli()
	current := map[string]ed25519.PublicKey{}
	for id, k := range r.VerifyKeys {
		pub, skip, err := decodeKey(serverName, id, k.Key)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		current[id] = pub
		c.keys = append(c.keys, storage.ServerKey{ServerName: serverName, KeyID: id, PublicKey: pub, ValidUntilTS: capped, FetchedTS: fetched})
	}
	for id, k := range r.OldVerifyKeys {
		pub, skip, err := decodeKey(serverName, id, k.Key)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		if k.ExpiredTS == nil || *k.ExpiredTS <= 0 {
			return nil, fmt.Errorf("key response of %s: old key %s has no expired_ts", serverName, truncate(id))
		}
		if _, dup := current[id]; dup {
			return nil, fmt.Errorf("key response of %s lists %s as both current and old", serverName, truncate(id))
		}
		c.keys = append(c.keys, storage.ServerKey{ServerName: serverName, KeyID: id, PublicKey: pub, ValidUntilTS: *k.ExpiredTS, ExpiredTS: *k.ExpiredTS, FetchedTS: fetched})
	}
	verified := false
	for id := range r.Signatures[serverName] {
		pub, ok := current[id]
		if !ok {
			// Not a current key of the server: perhaps a notary's key
			// under the same name. It proves nothing either way.
			continue
		}
		if err := pdu.VerifyJSON(raw, serverName, id, pub); err != nil {
			return nil, fmt.Errorf("key response of %s: signature by %s: %w", serverName, id, err)
		}
		verified = true
	}
	if !verified {
		return nil, fmt.Errorf("key response of %s is not signed by any of its verify keys", serverName)
	}
	return c, nil
}

// decodeKey checks a key ID and decodes its public key; skip is set for
// algorithms other than ed25519, which Matrix does not use.
func decodeKey(serverName, id, key string) (pub ed25519.PublicKey, skip bool, err error) {
	alg, version, ok := strings.Cut(id, ":")
	if !ok || version == "" {
		return nil, false, fmt.Errorf("key response of %s: key ID %q is not algorithm:version", serverName, truncate(id))
	}
	if alg != "ed25519" {
		return nil, true, nil
	}
	if !validKeyVersion(version) {
		return nil, false, fmt.Errorf("key response of %s: key ID %q has characters outside [a-zA-Z0-9_]", serverName, truncate(id))
	}
	b, err := pdu.DecodeBase64(key)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false, fmt.Errorf("key response of %s: key %s is not %d bytes of base64", serverName, id, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), false, nil
}

// validKeyVersion is the spec's key version grammar, [a-zA-Z0-9_]+.
func validKeyVersion(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validKeyID reports whether id is an ed25519 key ID.
func validKeyID(id string) bool {
	v, ok := strings.CutPrefix(id, "ed25519:")
	return ok && validKeyVersion(v)
}

// keyIDsOf returns the IDs of every key (current and old) in a response
// already checked once.
func keyIDsOf(raw []byte) (map[string]bool, error) {
	var r keyResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for id := range r.VerifyKeys {
		ids[id] = true
	}
	for id := range r.OldVerifyKeys {
		ids[id] = true
	}
	return ids, nil
}

var errNotSignedByNotary = errors.New("not signed by the notary")

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
