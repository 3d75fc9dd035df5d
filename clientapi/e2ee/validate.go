package e2ee

// Checking uploaded keys (client-server-api "Key management API",
// "Cross-signing"): shape, ownership and signatures, before anything is
// stored. Each check returns the spec's error: 400 M_BAD_JSON for the
// wrong shape, M_INVALID_PARAM for a key that is not the uploader's to
// upload or is malformed, M_INVALID_SIGNATURE for a signature that does not
// verify.

import (
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// deviceKeys is the shape of a DeviceKeys object.
type deviceKeys struct {
	UserID     *string                       `json:"user_id"`
	DeviceID   *string                       `json:"device_id"`
	Algorithms *[]string                     `json:"algorithms"`
	Keys       *map[string]string            `json:"keys"`
	Signatures *map[string]map[string]string `json:"signatures"`
}

// checkedDeviceKeys is a device keys object that passed checkDeviceKeys.
type checkedDeviceKeys struct {
	canonical []byte // without "unsigned"
	ed25519   ed25519.PublicKey
}

// checkDeviceKeys checks the device keys raw uploaded by userID's device
// deviceID: they are that device's, carry its ed25519 key, and are signed
// by it.
func checkDeviceKeys(raw json.RawMessage, userID, deviceID string) (*checkedDeviceKeys, error) {
	canon, err := canonicalObject(raw, "device_keys", "unsigned")
	if err != nil {
		return nil, err
	}
	var dk deviceKeys
	if err := json.Unmarshal(canon, &dk); err != nil {
		return nil, httputil.BadJSON("device_keys: " + err.Error())
	}
	switch {
	case dk.UserID == nil || dk.DeviceID == nil || dk.Algorithms == nil || dk.Keys == nil || dk.Signatures == nil:
		return nil, httputil.BadJSON("device_keys needs user_id, device_id, algorithms, keys and signatures")
	case *dk.UserID != userID:
		return nil, httputil.InvalidParam("device_keys.user_id is " + *dk.UserID + ", not the user logged in (" + userID + ")")
	case *dk.DeviceID != deviceID:
		return nil, httputil.InvalidParam("device_keys.device_id is " + *dk.DeviceID + ", not the device logged in (" + deviceID + ")")
	}
	for name, value := range *dk.Keys {
		alg, id, ok := strings.Cut(name, ":")
		if !ok || alg == "" || id != deviceID {
			return nil, httputil.InvalidParam("device_keys.keys: " + name + " is not named <algorithm>:" + deviceID)
		}
		if value == "" {
			return nil, httputil.InvalidParam("device_keys.keys: " + name + " is empty")
		}
	}
	pub, ok := ed25519Key((*dk.Keys)["ed25519:"+deviceID])
	if !ok {
		return nil, httputil.InvalidParam("device_keys.keys needs ed25519:" + deviceID + ", a 32-byte key in unpadded base64")
	}
	if err := verify(canon, userID, "ed25519:"+deviceID, pub, "device_keys"); err != nil {
		return nil, err
	}
	return &checkedDeviceKeys{canonical: canon, ed25519: pub}, nil
}

// edPublicKey returns the ed25519 key of stored device keys.
func edPublicKey(keyJSON []byte, deviceID string) (ed25519.PublicKey, bool) {
	var dk deviceKeys
	if json.Unmarshal(keyJSON, &dk) != nil || dk.Keys == nil {
		return nil, false
	}
	return ed25519Key((*dk.Keys)["ed25519:"+deviceID])
}

// checkOneTimeKeys checks one-time (or, with fallback, fallback) keys of
// userID's device deviceID, whose ed25519 key is pub (nil when the device
// has not uploaded its keys). A key is named <algorithm>:<key ID> and is
// either a string (an unsigned key) or an object with "key" and
// "signatures", which must hold a valid signature by the device. Keys come
// back in name order, canonical.
func checkOneTimeKeys(keys map[string]json.RawMessage, userID, deviceID string, pub ed25519.PublicKey, fallback bool) ([]storage.OneTimeKey, error) {
	field := "one_time_keys"
	if fallback {
		field = "fallback_keys"
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]storage.OneTimeKey, 0, len(keys))
	algs := map[string]bool{}
	for _, name := range names {
		raw := keys[name]
		alg, id, ok := strings.Cut(name, ":")
		if !ok || alg == "" || id == "" {
			return nil, httputil.InvalidParam(field + ": " + name + " is not named <algorithm>:<key ID>")
		}
		if fallback && algs[alg] {
			return nil, httputil.InvalidParam(field + ": at most one key per algorithm (" + alg + ")")
		}
		algs[alg] = true
		what := field + "." + name
		canon, err := canonicalKey(raw, what)
		if err != nil {
			return nil, err
		}
		if canon[0] == '{' {
			var ko struct {
				Key        *string         `json:"key"`
				Signatures json.RawMessage `json:"signatures"`
			}
			if err := json.Unmarshal(canon, &ko); err != nil || ko.Key == nil || *ko.Key == "" || len(ko.Signatures) == 0 {
				return nil, httputil.BadJSON(what + " needs a string \"key\" and \"signatures\"")
			}
			if pub == nil {
				return nil, httputil.InvalidParam(what + " is signed, but the device has no keys to check it with: upload device_keys first")
			}
			if err := verify(canon, userID, "ed25519:"+deviceID, pub, what); err != nil {
				return nil, err
			}
		}
		out = append(out, storage.OneTimeKey{Algorithm: alg, KeyID: id, KeyJSON: canon})
	}
	return out, nil
}

// canonicalKey returns a key value, a non-empty string or an object, as
// canonical JSON.
func canonicalKey(raw json.RawMessage, what string) ([]byte, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, httputil.InvalidParam(what + " is empty")
		}
		return json.Marshal(s)
	}
	return canonicalObject(raw, what)
}

// crossSigningKey is the shape of a CrossSigningKey object.
type crossSigningKey struct {
	UserID *string            `json:"user_id"`
	Usage  *[]string          `json:"usage"`
	Keys   *map[string]string `json:"keys"`
}

// checkedCrossSigningKey is a cross-signing key that passed
// checkCrossSigningKey (its signatures are checked by the caller, who knows
// the master key).
type checkedCrossSigningKey struct {
	storage.CrossSigningKey
	pub ed25519.PublicKey
}

// checkCrossSigningKey checks raw as userID's cross-signing key of type
// keyType: its user, its usage, and exactly one ed25519 key named after
// itself.
func checkCrossSigningKey(raw json.RawMessage, userID, keyType, field string) (*checkedCrossSigningKey, error) {
	canon, err := canonicalObject(raw, field, "unsigned")
	if err != nil {
		return nil, err
	}
	var k crossSigningKey
	if err := json.Unmarshal(canon, &k); err != nil {
		return nil, httputil.BadJSON(field + ": " + err.Error())
	}
	switch {
	case k.UserID == nil || k.Usage == nil || k.Keys == nil:
		return nil, httputil.BadJSON(field + " needs user_id, usage and keys")
	case *k.UserID != userID:
		return nil, httputil.InvalidParam(field + ".user_id is " + *k.UserID + ", not " + userID)
	case !slices.Contains(*k.Usage, keyType):
		return nil, httputil.InvalidParam(field + ".usage must include " + keyType)
	case len(*k.Keys) != 1:
		return nil, httputil.InvalidParam(field + ".keys must hold exactly one key")
	}
	var name, value string
	for name, value = range *k.Keys {
	}
	pubText, ok := strings.CutPrefix(name, "ed25519:")
	pub, valid := ed25519Key(value)
	if !ok || pubText != value || !valid {
		return nil, httputil.InvalidParam(field + ".keys must be {\"ed25519:<public key>\": \"<public key>\"}, with a 32-byte key in unpadded base64")
	}
	return &checkedCrossSigningKey{
		CrossSigningKey: storage.CrossSigningKey{Type: keyType, PublicKey: value, KeyJSON: canon},
		pub:             pub,
	}, nil
}
