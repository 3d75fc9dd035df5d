package storage

// Queries on devices, access_tokens and refresh_tokens
// (migrations/0002_devices.sql). Tokens arrive here already hashed: this
// package never sees a usable token.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Device is a user's device (a login session).
type Device struct {
	Localpart   string
	DeviceID    string
	DisplayName *string // nil when none was given
	CreatedTS   int64
	LastSeenTS  int64  // 0 until first seen
	LastSeenIP  string // "" until first seen
}

// TokenOwner is what an access token authenticates.
type TokenOwner struct {
	Localpart   string
	DeviceID    string
	IsAdmin     bool
	Deactivated bool
	// ExpiresTS is when the token stops working (ms since the epoch), 0 =
	// never.
	ExpiresTS int64
	// SupersedesRefreshID is a refresh token to delete on this token's
	// first use (see ClearSuperseded), 0 = none.
	SupersedesRefreshID int64
}

// AccessToken is a new access token to store.
type AccessToken struct {
	Hash                string
	Localpart           string
	DeviceID            string
	ExpiresTS           int64 // 0 = never
	RefreshID           int64 // the refresh token issued with it, 0 = none
	SupersedesRefreshID int64 // 0 = none
}

// RefreshToken is a stored refresh token.
type RefreshToken struct {
	ID                  int64
	Localpart           string
	DeviceID            string
	SupersedesRefreshID int64
}

// UpsertDevice creates the device localpart/deviceID with displayName if it
// does not exist, and reports whether it is new. An existing device keeps
// its name: the spec's initial_device_display_name is "ignored if device_id
// corresponds to a known device".
func (tx *Tx) UpsertDevice(ctx context.Context, localpart, deviceID string, displayName *string) (created bool, err error) {
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO devices (localpart, device_id, display_name, created_ts)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (localpart, device_id) DO NOTHING`,
		localpart, deviceID, displayName, time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("create device %q of %q: %w", deviceID, localpart, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("create device %q of %q: %w", deviceID, localpart, err)
	}
	return n == 1, nil
}

// SetDeviceDisplayName sets (or, with nil, clears) a device's display name.
// It returns an error wrapping ErrNotFound if the device does not exist.
func (tx *Tx) SetDeviceDisplayName(ctx context.Context, localpart, deviceID string, displayName *string) error {
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE devices SET display_name = $3 WHERE localpart = $1 AND device_id = $2`,
		localpart, deviceID, displayName)
	if err != nil {
		return fmt.Errorf("rename device %q of %q: %w", deviceID, localpart, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("rename device %q of %q: %w", deviceID, localpart, err)
	} else if n == 0 {
		return fmt.Errorf("device %q of %q: %w", deviceID, localpart, ErrNotFound)
	}
	return nil
}

// GetDevice returns one device, or an error wrapping ErrNotFound.
func (db *DB) GetDevice(ctx context.Context, localpart, deviceID string) (*Device, error) {
	ds, err := listDevices(ctx, db.read, localpart, deviceID)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("device %q of %q: %w", deviceID, localpart, ErrNotFound)
	}
	return &ds[0], nil
}

// ListDevices returns every device of localpart, ordered by device ID.
func (db *DB) ListDevices(ctx context.Context, localpart string) ([]Device, error) {
	return listDevices(ctx, db.read, localpart, "")
}

// ListDevices is DB.ListDevices within tx.
func (tx *Tx) ListDevices(ctx context.Context, localpart string) ([]Device, error) {
	return listDevices(ctx, tx.q, localpart, "")
}

// listDevices lists localpart's devices, or only deviceID when it is not "".
func listDevices(ctx context.Context, q queryer, localpart, deviceID string) ([]Device, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT device_id, display_name, created_ts, last_seen_ts, last_seen_ip
		FROM devices WHERE localpart = $1 AND (device_id = $2 OR $2 = '')
		ORDER BY device_id`, localpart, deviceID)
	if err != nil {
		return nil, fmt.Errorf("list devices of %q: %w", localpart, err)
	}
	defer rows.Close()
	var ds []Device
	for rows.Next() {
		d := Device{Localpart: localpart}
		var name sql.NullString
		if err := rows.Scan(&d.DeviceID, &name, &d.CreatedTS, &d.LastSeenTS, &d.LastSeenIP); err != nil {
			return nil, fmt.Errorf("list devices of %q: %w", localpart, err)
		}
		if name.Valid {
			d.DisplayName = &name.String
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices of %q: %w", localpart, err)
	}
	return ds, nil
}

// DeleteDevices deletes the given devices of localpart with their tokens,
// and returns the IDs that existed. Unknown IDs are ignored, as the spec's
// /delete_devices asks.
func (tx *Tx) DeleteDevices(ctx context.Context, localpart string, deviceIDs []string) ([]string, error) {
	var deleted []string
	for _, id := range deviceIDs {
		// Tokens first: on SQLite the cascade needs foreign_keys on, which
		// open.go sets, but an explicit delete does not depend on it.
		if err := tx.DeleteDeviceTokens(ctx, localpart, id); err != nil {
			return nil, err
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM devices WHERE localpart = $1 AND device_id = $2`, localpart, id)
		if err != nil {
			return nil, fmt.Errorf("delete device %q of %q: %w", id, localpart, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("delete device %q of %q: %w", id, localpart, err)
		} else if n > 0 {
			deleted = append(deleted, id)
		}
	}
	return deleted, nil
}

// DeleteAllDevices deletes every device of localpart except those listed in
// keep, with their tokens, and returns the deleted IDs.
func (tx *Tx) DeleteAllDevices(ctx context.Context, localpart string, keep ...string) ([]string, error) {
	ds, err := tx.ListDevices(ctx, localpart)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range ds {
		if !slices.Contains(keep, d.DeviceID) {
			ids = append(ids, d.DeviceID)
		}
	}
	return tx.DeleteDevices(ctx, localpart, ids)
}

// DeleteDeviceTokens deletes every access and refresh token of one device
// (a login that reuses the device ID replaces its tokens).
func (tx *Tx) DeleteDeviceTokens(ctx context.Context, localpart, deviceID string) error {
	tx.tokensRevoked(localpart)
	for _, table := range []string{"access_tokens", "refresh_tokens"} {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE localpart = $1 AND device_id = $2`,
			localpart, deviceID); err != nil {
			return fmt.Errorf("delete %s of device %q of %q: %w", table, deviceID, localpart, err)
		}
	}
	return nil
}

// AddAccessToken stores a new access token for an existing device.
func (tx *Tx) AddAccessToken(ctx context.Context, t AccessToken) error {
	if t.Hash == "" {
		return errors.New("add access token: empty hash")
	}
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO access_tokens (token_hash, localpart, device_id, created_ts, expires_ts, refresh_id, supersedes_refresh_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Hash, t.Localpart, t.DeviceID, time.Now().UnixMilli(), t.ExpiresTS, t.RefreshID, t.SupersedesRefreshID)
	if err != nil {
		return fmt.Errorf("add access token for device %q of %q: %w", t.DeviceID, t.Localpart, err)
	}
	return nil
}

// AddRefreshToken stores a new refresh token and returns its ID.
func (tx *Tx) AddRefreshToken(ctx context.Context, hash, localpart, deviceID string, supersedes int64) (int64, error) {
	var id int64
	err := tx.q.QueryRowContext(ctx, `
		INSERT INTO refresh_tokens (token_hash, localpart, device_id, created_ts, supersedes_refresh_id)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		hash, localpart, deviceID, time.Now().UnixMilli(), supersedes).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add refresh token for device %q of %q: %w", deviceID, localpart, err)
	}
	return id, nil
}

// LookupAccessToken returns the owner of the access token with this hash,
// or an error wrapping ErrNotFound.
func (db *DB) LookupAccessToken(ctx context.Context, hash string) (*TokenOwner, error) {
	var o TokenOwner
	err := db.read.QueryRowContext(ctx, `
		SELECT t.localpart, t.device_id, a.is_admin, a.deactivated, t.expires_ts, t.supersedes_refresh_id
		FROM access_tokens t JOIN accounts a ON a.localpart = t.localpart
		WHERE t.token_hash = $1`, hash).
		Scan(&o.Localpart, &o.DeviceID, &o.IsAdmin, &o.Deactivated, &o.ExpiresTS, &o.SupersedesRefreshID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("access token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up access token: %w", err)
	}
	return &o, nil
}

// LookupRefreshToken returns the refresh token with this hash, or an error
// wrapping ErrNotFound.
func (tx *Tx) LookupRefreshToken(ctx context.Context, hash string) (*RefreshToken, error) {
	var r RefreshToken
	err := tx.q.QueryRowContext(ctx, `
		SELECT id, localpart, device_id, supersedes_refresh_id FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&r.ID, &r.Localpart, &r.DeviceID, &r.SupersedesRefreshID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("refresh token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up refresh token: %w", err)
	}
	return &r, nil
}

// ClearSuperseded deletes the refresh token refreshID, which a newer token
// superseded, now that the newer one has been used, and forgets the link
// everywhere it is recorded. Running it twice is harmless.
func (db *DB) ClearSuperseded(ctx context.Context, refreshID int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		return tx.ClearSuperseded(ctx, refreshID)
	})
}

// clearSupersededStatements are ClearSuperseded's statements ($1 the
// refresh token's ID, never 0). The links are found through the partial
// indexes of migrations/0023, whose condition ("<> 0") each repeats.
var clearSupersededStatements = []string{
	`DELETE FROM refresh_tokens WHERE id = $1`,
	// Access tokens issued with the old refresh token keep working
	// until they expire; only the refresh token is revoked.
	`UPDATE refresh_tokens SET supersedes_refresh_id = 0
		WHERE supersedes_refresh_id = $1 AND supersedes_refresh_id <> 0`,
	`UPDATE access_tokens SET supersedes_refresh_id = 0
		WHERE supersedes_refresh_id = $1 AND supersedes_refresh_id <> 0`,
	`UPDATE access_tokens SET refresh_id = 0 WHERE refresh_id = $1 AND refresh_id <> 0`,
}

// ClearSuperseded is DB.ClearSuperseded within tx.
func (tx *Tx) ClearSuperseded(ctx context.Context, refreshID int64) error {
	for _, q := range clearSupersededStatements {
		if _, err := tx.tx.ExecContext(ctx, q, refreshID); err != nil {
			return fmt.Errorf("revoke superseded refresh token: %w", err)
		}
	}
	return nil
}

// UpdateDeviceSeen records when and from where a device was last seen.
func (db *DB) UpdateDeviceSeen(ctx context.Context, localpart, deviceID string, ts int64, ip string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4 WHERE localpart = $1 AND device_id = $2`,
			localpart, deviceID, ts, ip)
		if err != nil {
			return fmt.Errorf("update last seen of device %q of %q: %w", deviceID, localpart, err)
		}
		return nil
	})
}
