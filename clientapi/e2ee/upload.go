package e2ee

// POST /keys/upload: a device's identity keys, one-time keys and fallback
// keys.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Limits on uploads. No client keeps more than about a hundred one-time
// keys (libolm: 100, vodozemac: 50), so these bound abuse, not use.
const (
	MaxOneTimeKeysPerUpload  = 1000
	MaxStoredOneTimeKeys     = 10000 // per device and algorithm
	maxFallbackKeysPerUpload = 16
)

// DefaultOneTimeKeyAlgorithm is always counted, at 0 when the device has
// none: clients written against Synapse read its count without checking
// that it is there.
const DefaultOneTimeKeyAlgorithm = "signed_curve25519"

// UploadRequest is the body of /keys/upload.
type UploadRequest struct {
	DeviceKeys   json.RawMessage            `json:"device_keys"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
}

// Upload checks and stores the keys of userID's device deviceID and
// returns the device's one-time key counts. Nothing is stored unless every
// key passes.
func (s *Service) Upload(ctx context.Context, userID, deviceID string, req *UploadRequest) (map[string]int, error) {
	if len(req.OneTimeKeys) > MaxOneTimeKeysPerUpload {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxOneTimeKeysPerUpload) + " one-time keys per upload")
	}
	if len(req.FallbackKeys) > maxFallbackKeysPerUpload {
		return nil, httputil.InvalidParam("too many fallback keys")
	}
	var (
		dk  *checkedDeviceKeys
		pub ed25519.PublicKey
		err error
	)
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		if dk, err = checkDeviceKeys(req.DeviceKeys, userID, deviceID); err != nil {
			return nil, err
		}
		pub = dk.ed25519
	} else if len(req.OneTimeKeys)+len(req.FallbackKeys) > 0 {
		stored, err := s.db.DeviceKeysOf(ctx, userID, deviceID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		if stored != nil {
			pub, _ = edPublicKey(stored.KeyJSON, deviceID)
		}
	}
	otks, err := checkOneTimeKeys(req.OneTimeKeys, userID, deviceID, pub, false)
	if err != nil {
		return nil, err
	}
	fallbacks, err := checkOneTimeKeys(req.FallbackKeys, userID, deviceID, pub, true)
	if err != nil {
		return nil, err
	}
	var (
		counts storage.KeyCounts
		pos    int64
	)
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		pos = 0
		if dk != nil {
			if err := s.checkDeviceIDFree(ctx, tx, userID, deviceID); err != nil {
				return err
			}
		}
		if err := storeOneTimeKeys(ctx, tx, userID, deviceID, otks, fallbacks); err != nil {
			return err
		}
		var err error
		if counts, err = tx.DeviceKeyCounts(ctx, userID, deviceID); err != nil {
			return err
		}
		for alg, n := range counts.OneTimeKeys {
			if n > MaxStoredOneTimeKeys {
				return httputil.InvalidParam("the device would hold more than " + strconv.Itoa(MaxStoredOneTimeKeys) + " one-time keys of " + alg)
			}
		}
		if dk != nil {
			changed, err := tx.SetDeviceKeys(ctx, userID, deviceID, dk.canonical)
			if err != nil {
				return err
			}
			if changed {
				if pos, err = tx.MarkDeviceListChanged(ctx, userID); err != nil {
					return err
				}
				return tx.QueueDeviceListUpdates(ctx, userID, []string{deviceID})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notifyDeviceListChange(ctx, userID, pos)
	return withDefaultCount(counts.OneTimeKeys), nil
}

// storeOneTimeKeys stores one-time and fallback keys in tx; a one-time key
// re-uploaded with another value is 400 M_INVALID_PARAM.
func storeOneTimeKeys(ctx context.Context, tx *storage.Tx, userID, deviceID string, otks, fallbacks []storage.OneTimeKey) error {
	if err := tx.AddOneTimeKeys(ctx, userID, deviceID, otks); err != nil {
		if errors.Is(err, storage.ErrKeyConflict) {
			return httputil.InvalidParam(err.Error() + ": one-time keys cannot be replaced")
		}
		return err
	}
	for _, k := range fallbacks {
		if err := tx.SetFallbackKey(ctx, userID, deviceID, k); err != nil {
			return err
		}
	}
	return nil
}

// checkDeviceIDFree refuses a device whose ID is one of the user's
// cross-signing public keys: clients name both kinds "ed25519:<ID>", and the
// spec forbids the collision.
func (s *Service) checkDeviceIDFree(ctx context.Context, tx *storage.Tx, userID, deviceID string) error {
	keys, err := tx.CrossSigningKeys(ctx, userID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.PublicKey == deviceID {
			return httputil.Forbidden("the device ID is one of the user's cross-signing keys")
		}
	}
	return nil
}

// withDefaultCount adds DefaultOneTimeKeyAlgorithm at 0 when absent.
// (syncapi does the same for device_one_time_keys_count.)
func withDefaultCount(counts map[string]int) map[string]int {
	if counts == nil {
		counts = map[string]int{}
	}
	if _, ok := counts[DefaultOneTimeKeyAlgorithm]; !ok {
		counts[DefaultOneTimeKeyAlgorithm] = 0
	}
	return counts
}
