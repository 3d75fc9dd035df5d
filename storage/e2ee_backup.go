package storage

// Queries on server-side key backups (migrations/0014_e2ee.sql,
// e2ee_backup_versions and e2ee_backup_keys). Which of two backed-up keys
// of a session to keep is the caller's rule (clientapi/e2ee).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// BackupVersion is a key backup version of a user.
type BackupVersion struct {
	Version   int64
	Algorithm string
	AuthData  []byte // a JSON object
	// Etag changes whenever the version's keys do.
	Etag  int64
	Count int64 // keys stored
}

// CreateBackupVersion adds a backup version, numbered after every version
// the user ever had, and returns its number. It becomes the current one.
func (tx *Tx) CreateBackupVersion(ctx context.Context, userID, algorithm string, authData []byte) (int64, error) {
	var version int64
	err := tx.q.QueryRowContext(ctx, `
		INSERT INTO e2ee_backup_versions (user_id, version, algorithm, auth_data)
		SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM e2ee_backup_versions WHERE user_id = $1
		RETURNING version`, userID, algorithm, string(authData)).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("create a key backup version of %q: %w", userID, err)
	}
	return version, nil
}

// BackupVersion returns a version that is not deleted (version 0: the
// current one, the newest), with its key count, or an error wrapping
// ErrNotFound.
func (tx *Tx) BackupVersion(ctx context.Context, userID string, version int64) (*BackupVersion, error) {
	return backupVersion(ctx, tx.q, userID, version)
}

// BackupVersion is Tx.BackupVersion outside a transaction.
func (db *DB) BackupVersion(ctx context.Context, userID string, version int64) (*BackupVersion, error) {
	return backupVersion(ctx, db.read, userID, version)
}

func backupVersion(ctx context.Context, q queryer, userID string, version int64) (*BackupVersion, error) {
	var (
		v        BackupVersion
		authData string
	)
	err := q.QueryRowContext(ctx, `
		SELECT v.version, v.algorithm, v.auth_data, v.etag,
			(SELECT COUNT(*) FROM e2ee_backup_keys k WHERE k.user_id = v.user_id AND k.version = v.version)
		FROM e2ee_backup_versions v
		WHERE v.user_id = $1 AND NOT v.deleted AND (v.version = $2 OR $2 = 0)
		ORDER BY v.version DESC LIMIT 1`, userID, version).
		Scan(&v.Version, &v.Algorithm, &authData, &v.Etag, &v.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key backup version %d of %q: %w", version, userID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("key backup version %d of %q: %w", version, userID, err)
	}
	v.AuthData = []byte(authData)
	return &v, nil
}

// BackupVersionDeleted reports whether version was created and later
// deleted.
func (tx *Tx) BackupVersionDeleted(ctx context.Context, userID string, version int64) (bool, error) {
	var n int
	err := tx.q.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM e2ee_backup_versions WHERE user_id = $1 AND version = $2 AND deleted`,
		userID, version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("key backup version %d of %q: %w", version, userID, err)
	}
	return n > 0, nil
}

// UpdateBackupAuthData replaces a version's auth_data.
func (tx *Tx) UpdateBackupAuthData(ctx context.Context, userID string, version int64, authData []byte) error {
	_, err := tx.q.ExecContext(ctx, `
		UPDATE e2ee_backup_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2 AND NOT deleted`,
		userID, version, string(authData))
	if err != nil {
		return fmt.Errorf("update key backup version %d of %q: %w", version, userID, err)
	}
	return nil
}

// DeleteBackupVersion marks a version deleted and deletes its keys.
func (tx *Tx) DeleteBackupVersion(ctx context.Context, userID string, version int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE e2ee_backup_versions SET deleted = TRUE WHERE user_id = $1 AND version = $2`, userID, version); err != nil {
		return fmt.Errorf("delete key backup version %d of %q: %w", version, userID, err)
	}
	if _, err := tx.q.ExecContext(ctx, `
		DELETE FROM e2ee_backup_keys WHERE user_id = $1 AND version = $2`, userID, version); err != nil {
		return fmt.Errorf("delete key backup version %d of %q: %w", version, userID, err)
	}
	return nil
}

// BumpBackupEtag gives a version a new etag, after its keys changed.
func (tx *Tx) BumpBackupEtag(ctx context.Context, userID string, version int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE e2ee_backup_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2`, userID, version); err != nil {
		return fmt.Errorf("key backup version %d of %q: %w", version, userID, err)
	}
	return nil
}

// BackupKey is the backup of one megolm session's key.
type BackupKey struct {
	RoomID            string
	SessionID         string
	FirstMessageIndex int64
	ForwardedCount    int64
	IsVerified        bool
	SessionData       []byte // a JSON object
}

// BackupKeyOf returns the stored backup of one session, or an error
// wrapping ErrNotFound.
func (tx *Tx) BackupKeyOf(ctx context.Context, userID string, version int64, roomID, sessionID string) (*BackupKey, error) {
	keys, err := backupKeys(ctx, tx.q, userID, version, roomID, sessionID)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("backed-up key %q in %q: %w", sessionID, roomID, ErrNotFound)
	}
	return &keys[0], nil
}

// PutBackupKey stores k, replacing the session's stored backup.
func (tx *Tx) PutBackupKey(ctx context.Context, userID string, version int64, k BackupKey) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
			first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
			is_verified = excluded.is_verified, session_data = excluded.session_data`,
		userID, version, k.RoomID, k.SessionID, k.FirstMessageIndex, k.ForwardedCount, k.IsVerified, string(k.SessionData))
	if err != nil {
		return fmt.Errorf("back up key %q in %q: %w", k.SessionID, k.RoomID, err)
	}
	return nil
}

// BackupKeys returns the keys of a version: all of them (roomID ""), a
// room's (sessionID ""), or one session's; ordered by room and session.
func (db *DB) BackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) ([]BackupKey, error) {
	return backupKeys(ctx, db.read, userID, version, roomID, sessionID)
}

func backupKeys(ctx context.Context, q queryer, userID string, version int64, roomID, sessionID string) ([]BackupKey, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data
		FROM e2ee_backup_keys
		WHERE user_id = $1 AND version = $2 AND (room_id = $3 OR $3 = '') AND (session_id = $4 OR $4 = '')
		ORDER BY room_id, session_id`, userID, version, roomID, sessionID)
	if err != nil {
		return nil, fmt.Errorf("backed-up keys of %q: %w", userID, err)
	}
	defer rows.Close()
	var out []BackupKey
	for rows.Next() {
		var (
			k    BackupKey
			data string
		)
		if err := rows.Scan(&k.RoomID, &k.SessionID, &k.FirstMessageIndex, &k.ForwardedCount, &k.IsVerified, &data); err != nil {
			return nil, fmt.Errorf("backed-up keys of %q: %w", userID, err)
		}
		k.SessionData = []byte(data)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backed-up keys of %q: %w", userID, err)
	}
	return out, nil
}

// DeleteBackupKeys deletes keys of a version: all (roomID ""), a room's
// (sessionID ""), or one session's. It returns how many went.
func (tx *Tx) DeleteBackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `
		DELETE FROM e2ee_backup_keys
		WHERE user_id = $1 AND version = $2 AND (room_id = $3 OR $3 = '') AND (session_id = $4 OR $4 = '')`,
		userID, version, roomID, sessionID)
	if err != nil {
		return 0, fmt.Errorf("delete backed-up keys of %q: %w", userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete backed-up keys of %q: %w", userID, err)
	}
	return n, nil
}
