package storage

// Queries on the end-to-end encryption key tables (migrations/0014_e2ee.sql):
// device identity keys, one-time and fallback keys, cross-signing keys and
// uploaded signatures. What is a valid key or signature is the caller's
// business (clientapi/e2ee); these queries store and find them.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrKeyConflict is returned (wrapped) when a one-time key is uploaded
// again under the same ID with a different value.
var ErrKeyConflict = errors.New("a different key with this ID exists")

// DeviceKeys is one device's identity keys.
type DeviceKeys struct {
	UserID   string
	DeviceID string
	// KeyJSON is the signed device keys object, canonical, without
	// "unsigned".
	KeyJSON []byte
	// DisplayName is a remote device's name as its server gave it; nil for
	// local devices (their names are in devices).
	DisplayName *string
}

// SetDeviceKeys stores the identity keys of userID's device deviceID and
// reports whether they changed (new, or different from those stored).
func (tx *Tx) SetDeviceKeys(ctx context.Context, userID, deviceID string, keyJSON []byte) (changed bool, err error) {
	var old string
	err = tx.q.QueryRowContext(ctx, `
		SELECT key_json FROM e2ee_device_keys WHERE user_id = $1 AND device_id = $2`, userID, deviceID).Scan(&old)
	switch {
	case err == nil && old == string(keyJSON):
		return false, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("device keys of %q %q: %w", userID, deviceID, err)
	}
	_, err = tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_device_keys (user_id, device_id, key_json) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json`,
		userID, deviceID, string(keyJSON))
	if err != nil {
		return false, fmt.Errorf("store device keys of %q %q: %w", userID, deviceID, err)
	}
	return true, nil
}

// DeviceKeysOf returns the identity keys of one device, or an error
// wrapping ErrNotFound.
func (tx *Tx) DeviceKeysOf(ctx context.Context, userID, deviceID string) (*DeviceKeys, error) {
	return deviceKeysOf(ctx, tx.q, userID, deviceID)
}

// DeviceKeysOf is Tx.DeviceKeysOf outside a transaction.
func (db *DB) DeviceKeysOf(ctx context.Context, userID, deviceID string) (*DeviceKeys, error) {
	return deviceKeysOf(ctx, db.read, userID, deviceID)
}

func deviceKeysOf(ctx context.Context, q queryer, userID, deviceID string) (*DeviceKeys, error) {
	d := DeviceKeys{UserID: userID, DeviceID: deviceID}
	var keyJSON string
	err := q.QueryRowContext(ctx, `
		SELECT key_json, display_name FROM e2ee_device_keys WHERE user_id = $1 AND device_id = $2`,
		userID, deviceID).Scan(&keyJSON, &d.DisplayName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("device keys of %q %q: %w", userID, deviceID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("device keys of %q %q: %w", userID, deviceID, err)
	}
	d.KeyJSON = []byte(keyJSON)
	return &d, nil
}

// DeviceKeysOfUsers returns the identity keys of every device of userIDs,
// ordered by user and device.
func (db *DB) DeviceKeysOfUsers(ctx context.Context, userIDs []string) ([]DeviceKeys, error) {
	var out []DeviceKeys
	for chunk := range chunks(userIDs, inChunk) {
		args := make([]any, len(chunk))
		for i, u := range chunk {
			args[i] = u
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT user_id, device_id, key_json, display_name FROM e2ee_device_keys
			WHERE user_id IN (`+inList(1, len(chunk))+`) ORDER BY user_id, device_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("device keys: %w", err)
		}
		for rows.Next() {
			var (
				d       DeviceKeys
				keyJSON string
			)
			if err := rows.Scan(&d.UserID, &d.DeviceID, &keyJSON, &d.DisplayName); err != nil {
				rows.Close()
				return nil, fmt.Errorf("device keys: %w", err)
			}
			d.KeyJSON = []byte(keyJSON)
			out = append(out, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("device keys: %w", err)
		}
	}
	return out, nil
}

// DeviceDisplayNames returns the display names of the devices of the local
// users localparts: localpart → device ID → name (devices without a name
// are absent).
func (db *DB) DeviceDisplayNames(ctx context.Context, localparts []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for chunk := range chunks(localparts, inChunk) {
		args := make([]any, len(chunk))
		for i, lp := range chunk {
			args[i] = lp
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT localpart, device_id, display_name FROM devices
			WHERE display_name IS NOT NULL AND localpart IN (`+inList(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("device names: %w", err)
		}
		for rows.Next() {
			var lp, id, name string
			if err := rows.Scan(&lp, &id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("device names: %w", err)
			}
			if out[lp] == nil {
				out[lp] = map[string]string{}
			}
			out[lp][id] = name
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("device names: %w", err)
		}
	}
	return out, nil
}

// OneTimeKey is a one-time or fallback key of a device.
type OneTimeKey struct {
	Algorithm string
	KeyID     string // without the algorithm
	// KeyJSON is the key as uploaded: a JSON string or a signed object.
	KeyJSON []byte
}

// Name is the key's name in the APIs, "<algorithm>:<key ID>".
func (k OneTimeKey) Name() string { return k.Algorithm + ":" + k.KeyID }

// AddOneTimeKeys stores one-time keys of a device. A key already stored
// under the same name with the same value is skipped; with another value
// the call fails with an error wrapping ErrKeyConflict and naming the key
// (the transaction should then be rolled back).
func (tx *Tx) AddOneTimeKeys(ctx context.Context, userID, deviceID string, keys []OneTimeKey) error {
	for _, k := range keys {
		res, err := tx.q.ExecContext(ctx, `
			INSERT INTO e2ee_one_time_keys (user_id, device_id, algorithm, key_id, key_json)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING`,
			userID, deviceID, k.Algorithm, k.KeyID, string(k.KeyJSON))
		if err != nil {
			return fmt.Errorf("store one-time key %s of %q %q: %w", k.Name(), userID, deviceID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store one-time key %s of %q %q: %w", k.Name(), userID, deviceID, err)
		} else if n == 1 {
			continue
		}
		var old string
		err = tx.q.QueryRowContext(ctx, `
			SELECT key_json FROM e2ee_one_time_keys
			WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`,
			userID, deviceID, k.Algorithm, k.KeyID).Scan(&old)
		if err != nil {
			return fmt.Errorf("one-time key %s of %q %q: %w", k.Name(), userID, deviceID, err)
		}
		if old != string(k.KeyJSON) {
			return fmt.Errorf("one-time key %s: %w", k.Name(), ErrKeyConflict)
		}
	}
	return nil
}

// SetFallbackKey stores k as the device's fallback key of its algorithm,
// replacing any other. Uploading the stored key again keeps its used flag,
// so a client re-sending its key does not make a used key look fresh.
func (tx *Tx) SetFallbackKey(ctx context.Context, userID, deviceID string, k OneTimeKey) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)
		VALUES ($1, $2, $3, $4, $5, FALSE)
		ON CONFLICT (user_id, device_id, algorithm) DO UPDATE
		SET key_id = excluded.key_id, key_json = excluded.key_json, used = FALSE
		WHERE e2ee_fallback_keys.key_id <> excluded.key_id OR e2ee_fallback_keys.key_json <> excluded.key_json`,
		userID, deviceID, k.Algorithm, k.KeyID, string(k.KeyJSON))
	if err != nil {
		return fmt.Errorf("store fallback key %s of %q %q: %w", k.Name(), userID, deviceID, err)
	}
	return nil
}

// KeyCounts is what a device is told about its keys on the server.
type KeyCounts struct {
	// OneTimeKeys counts the unclaimed one-time keys per algorithm.
	OneTimeKeys map[string]int
	// UnusedFallback lists the algorithms whose fallback key no claim has
	// returned yet, sorted.
	UnusedFallback []string
}

// DeviceKeyCounts returns the device's key counts, in one statement.
func (db *DB) DeviceKeyCounts(ctx context.Context, userID, deviceID string) (KeyCounts, error) {
	return deviceKeyCounts(ctx, db.read, userID, deviceID)
}

// DeviceKeyCounts is DB.DeviceKeyCounts within tx.
func (tx *Tx) DeviceKeyCounts(ctx context.Context, userID, deviceID string) (KeyCounts, error) {
	return deviceKeyCounts(ctx, tx.q, userID, deviceID)
}

func deviceKeyCounts(ctx context.Context, q queryer, userID, deviceID string) (KeyCounts, error) {
	c := KeyCounts{OneTimeKeys: map[string]int{}, UnusedFallback: []string{}}
	rows, err := q.QueryContext(ctx, `
		SELECT 'o', algorithm, COUNT(*) FROM e2ee_one_time_keys
		WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm
		UNION ALL
		SELECT 'f', algorithm, 0 FROM e2ee_fallback_keys
		WHERE user_id = $1 AND device_id = $2 AND used = FALSE`, userID, deviceID)
	if err != nil {
		return c, fmt.Errorf("key counts of %q %q: %w", userID, deviceID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind, alg string
			n         int
		)
		if err := rows.Scan(&kind, &alg, &n); err != nil {
			return c, fmt.Errorf("key counts of %q %q: %w", userID, deviceID, err)
		}
		if kind == "o" {
			c.OneTimeKeys[alg] = n
		} else {
			c.UnusedFallback = append(c.UnusedFallback, alg)
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("key counts of %q %q: %w", userID, deviceID, err)
	}
	slices.Sort(c.UnusedFallback)
	return c, nil
}

// KeyClaim asks for a key of one device.
type KeyClaim struct {
	UserID, DeviceID, Algorithm string
}

// ClaimedKey is the key a claim got.
type ClaimedKey struct {
	KeyClaim
	Key      OneTimeKey
	Fallback bool // the device had no one-time key left
}

// ClaimKeys claims, for each claim, the device's oldest one-time key of the
// algorithm, which is deleted, or failing that its fallback key, which is
// marked used. Claims for which the device has neither get nothing.
//
// Each one-time key is handed out once even when many claims race for it:
// the delete of the chosen key either removes the row, and the key is this
// claim's, or finds it gone (another claim committed it first, PostgreSQL
// re-checking the row after waiting for that claim's lock) and the claim
// picks again. On SQLite the transaction holds the database's write lock,
// so claims cannot interleave at all.
func (tx *Tx) ClaimKeys(ctx context.Context, claims []KeyClaim) ([]ClaimedKey, error) {
	// The same order in every transaction keeps two claimers of the same
	// devices from deadlocking on PostgreSQL.
	sorted := slices.Clone(claims)
	slices.SortFunc(sorted, func(a, b KeyClaim) int {
		return strings.Compare(a.UserID+"\x00"+a.DeviceID+"\x00"+a.Algorithm, b.UserID+"\x00"+b.DeviceID+"\x00"+b.Algorithm)
	})
	var out []ClaimedKey
	for _, c := range sorted {
		k, fallback, err := tx.claimKey(ctx, c)
		if err != nil {
			return nil, err
		}
		if k != nil {
			out = append(out, ClaimedKey{KeyClaim: c, Key: *k, Fallback: fallback})
		}
	}
	return out, nil
}

func (tx *Tx) claimKey(ctx context.Context, c KeyClaim) (*OneTimeKey, bool, error) {
	for {
		k := OneTimeKey{Algorithm: c.Algorithm}
		var keyJSON string
		err := tx.q.QueryRowContext(ctx, `
			DELETE FROM e2ee_one_time_keys WHERE key_nid = (
				SELECT key_nid FROM e2ee_one_time_keys
				WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
				ORDER BY key_nid LIMIT 1)
			RETURNING key_id, key_json`, c.UserID, c.DeviceID, c.Algorithm).Scan(&k.KeyID, &keyJSON)
		if err == nil {
			k.KeyJSON = []byte(keyJSON)
			return &k, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("claim a one-time key of %q %q: %w", c.UserID, c.DeviceID, err)
		}
		// Either there is no key left, or another claim took the one
		// chosen: look again, and stop when there is none.
		var left int
		err = tx.q.QueryRowContext(ctx, `
			SELECT COUNT(*) FROM e2ee_one_time_keys
			WHERE user_id = $1 AND device_id = $2 AND algorithm = $3`, c.UserID, c.DeviceID, c.Algorithm).Scan(&left)
		if err != nil {
			return nil, false, fmt.Errorf("claim a one-time key of %q %q: %w", c.UserID, c.DeviceID, err)
		}
		if left == 0 {
			break
		}
	}
	k := OneTimeKey{Algorithm: c.Algorithm}
	var keyJSON string
	err := tx.q.QueryRowContext(ctx, `
		UPDATE e2ee_fallback_keys SET used = TRUE
		WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
		RETURNING key_id, key_json`, c.UserID, c.DeviceID, c.Algorithm).Scan(&k.KeyID, &keyJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("claim the fallback key of %q %q: %w", c.UserID, c.DeviceID, err)
	}
	k.KeyJSON = []byte(keyJSON)
	return &k, true, nil
}

// Cross-signing key types (key_type, and the "usage" they are uploaded with).
const (
	MasterKey      = "master"
	SelfSigningKey = "self_signing"
	UserSigningKey = "user_signing"
)

// CrossSigningKey is one of a user's cross-signing keys.
type CrossSigningKey struct {
	Type      string // MasterKey, SelfSigningKey or UserSigningKey
	PublicKey string // unpadded base64
	KeyJSON   []byte // canonical
}

// SetCrossSigningKey stores k as userID's key of its type, replacing any
// other.
func (tx *Tx) SetCrossSigningKey(ctx context.Context, userID string, k CrossSigningKey) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_cross_signing_keys (user_id, key_type, public_key, key_json) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, key_type) DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json`,
		userID, k.Type, k.PublicKey, string(k.KeyJSON))
	if err != nil {
		return fmt.Errorf("store the %s key of %q: %w", k.Type, userID, err)
	}
	return nil
}

// CrossSigningKeys returns userID's cross-signing keys by type.
func (tx *Tx) CrossSigningKeys(ctx context.Context, userID string) (map[string]CrossSigningKey, error) {
	all, err := crossSigningKeys(ctx, tx.q, []string{userID})
	return all[userID], err
}

// CrossSigningKeysOfUsers returns the cross-signing keys of userIDs: user →
// type → key.
func (db *DB) CrossSigningKeysOfUsers(ctx context.Context, userIDs []string) (map[string]map[string]CrossSigningKey, error) {
	return crossSigningKeys(ctx, db.read, userIDs)
}

func crossSigningKeys(ctx context.Context, q queryer, userIDs []string) (map[string]map[string]CrossSigningKey, error) {
	out := map[string]map[string]CrossSigningKey{}
	for chunk := range chunks(userIDs, inChunk) {
		args := make([]any, len(chunk))
		for i, u := range chunk {
			args[i] = u
		}
		rows, err := q.QueryContext(ctx, `
			SELECT user_id, key_type, public_key, key_json FROM e2ee_cross_signing_keys
			WHERE user_id IN (`+inList(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("cross-signing keys: %w", err)
		}
		for rows.Next() {
			var (
				user, keyJSON string
				k             CrossSigningKey
			)
			if err := rows.Scan(&user, &k.Type, &k.PublicKey, &keyJSON); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cross-signing keys: %w", err)
			}
			k.KeyJSON = []byte(keyJSON)
			if out[user] == nil {
				out[user] = map[string]CrossSigningKey{}
			}
			out[user][k.Type] = k
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("cross-signing keys: %w", err)
		}
	}
	return out, nil
}

// KeySignature is a signature uploaded with /keys/signatures/upload.
type KeySignature struct {
	TargetUserID string
	// TargetKeyID is a device ID or a cross-signing public key.
	TargetKeyID  string
	SignerUserID string
	SignerKeyID  string // "ed25519:<device ID or public key>"
	Signature    string
}

// AddKeySignatures stores signatures (a signature by the same signer key on
// the same target replaces the old one).
func (tx *Tx) AddKeySignatures(ctx context.Context, sigs []KeySignature) error {
	for _, s := range sigs {
		_, err := tx.q.ExecContext(ctx, `
			INSERT INTO e2ee_key_signatures (target_user_id, target_key_id, signer_user_id, signer_key_id, signature)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)
			DO UPDATE SET signature = excluded.signature`,
			s.TargetUserID, s.TargetKeyID, s.SignerUserID, s.SignerKeyID, s.Signature)
		if err != nil {
			return fmt.Errorf("store a signature of %q's key %q: %w", s.TargetUserID, s.TargetKeyID, err)
		}
	}
	return nil
}

// KeySignaturesOfUsers returns the uploaded signatures of the keys of
// targetUserIDs, by anyone.
func (db *DB) KeySignaturesOfUsers(ctx context.Context, targetUserIDs []string) ([]KeySignature, error) {
	var out []KeySignature
	for chunk := range chunks(targetUserIDs, inChunk) {
		args := make([]any, len(chunk))
		for i, u := range chunk {
			args[i] = u
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature FROM e2ee_key_signatures
			WHERE target_user_id IN (`+inList(1, len(chunk))+`)
			ORDER BY target_user_id, target_key_id, signer_user_id, signer_key_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("key signatures: %w", err)
		}
		for rows.Next() {
			var s KeySignature
			if err := rows.Scan(&s.TargetUserID, &s.TargetKeyID, &s.SignerUserID, &s.SignerKeyID, &s.Signature); err != nil {
				rows.Close()
				return nil, fmt.Errorf("key signatures: %w", err)
			}
			out = append(out, s)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("key signatures: %w", err)
		}
	}
	return out, nil
}

// ForgetDevices forgets everything kept for the deleted devices deviceIDs
// of userID: identity, one-time and fallback keys, signatures of them,
// waiting to-device messages and transaction IDs, the dehydrated device
// record, and the pushers the devices set (as Synapse removes a device's
// pushers with it: a logged-out phone must not keep getting pushes). When any of them had identity keys, the
// user's device list changes: the position of that change is returned (0
// when nothing visible changed), for waking the syncs of who shares a room,
// and the deletions are queued for other servers (QueueDeviceListUpdates).
func (tx *Tx) ForgetDevices(ctx context.Context, userID string, deviceIDs []string) (int64, error) {
	var hadKeys []string
	for _, id := range deviceIDs {
		res, err := tx.q.ExecContext(ctx, `DELETE FROM e2ee_device_keys WHERE user_id = $1 AND device_id = $2`, userID, id)
		if err != nil {
			return 0, fmt.Errorf("delete the keys of %q %q: %w", userID, id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("delete the keys of %q %q: %w", userID, id, err)
		} else if n > 0 {
			hadKeys = append(hadKeys, id)
		}
		for _, q := range []string{
			`DELETE FROM e2ee_one_time_keys WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM e2ee_fallback_keys WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM e2ee_key_signatures WHERE target_user_id = $1 AND target_key_id = $2`,
			`DELETE FROM to_device_messages WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM to_device_txns WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM e2ee_dehydrated_devices WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM pushers WHERE user_id = $1 AND device_id = $2`,
		} {
			if _, err := tx.q.ExecContext(ctx, q, userID, id); err != nil {
				return 0, fmt.Errorf("delete the keys of %q %q: %w", userID, id, err)
			}
		}
	}
	if len(hadKeys) == 0 {
		return 0, nil
	}
	pos, err := tx.MarkDeviceListChanged(ctx, userID)
	if err != nil {
		return 0, err
	}
	// Other servers hear that the devices are gone.
	return pos, tx.QueueDeviceListUpdates(ctx, userID, hadKeys)
}
