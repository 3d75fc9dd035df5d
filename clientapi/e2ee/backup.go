package e2ee

// Server-side key backups (client-server-api "Server-side key backups"):
// /room_keys/version and /room_keys/keys.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// CodeWrongRoomKeysVersion is the errcode of a key upload to a backup
// version that is not the current one.
const CodeWrongRoomKeysVersion = "M_WRONG_ROOM_KEYS_VERSION"

// MaxBackupKeysPerUpload bounds the sessions of one key upload.
const MaxBackupKeysPerUpload = 10000

// BackupInfo is a backup version as GET /room_keys/version shows it.
type BackupInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int64           `json:"count"`
	Etag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// BackupUpdate is the answer to a change of a version's keys.
type BackupUpdate struct {
	Etag  string `json:"etag"`
	Count int64  `json:"count"`
}

// BackupKeyData is one session's backup, as the API carries it.
type BackupKeyData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// ParseVersion reads a backup version parameter; one that is not a version
// this server could have made names no backup (404).
func ParseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || strconv.FormatInt(v, 10) != s {
		return 0, httputil.NotFound("unknown backup version " + strconv.Quote(s))
	}
	return v, nil
}

// backupAlgorithmAndAuth checks the body of a version creation or update.
func backupAlgorithmAndAuth(algorithm *string, authData json.RawMessage) ([]byte, error) {
	if algorithm == nil || *algorithm == "" {
		return nil, httputil.MissingParam(`"algorithm" is required`)
	}
	if len(authData) == 0 || string(authData) == "null" {
		return nil, httputil.MissingParam(`"auth_data" is required`)
	}
	return canonicalObject(authData, "auth_data")
}

// CreateBackup creates a new backup version, which becomes the current one,
// and returns its version.
func (s *Service) CreateBackup(ctx context.Context, userID string, algorithm *string, authData json.RawMessage) (string, error) {
	auth, err := backupAlgorithmAndAuth(algorithm, authData)
	if err != nil {
		return "", err
	}
	var v int64
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		v, err = tx.CreateBackupVersion(ctx, userID, *algorithm, auth)
		return err
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v, 10), nil
}

// Backup returns a backup version (version 0: the current one), or 404.
func (s *Service) Backup(ctx context.Context, userID string, version int64) (*BackupInfo, error) {
	v, err := s.db.BackupVersion(ctx, userID, version)
	if errors.Is(err, storage.ErrNotFound) {
		if version == 0 {
			return nil, httputil.NotFound("no current backup version")
		}
		return nil, httputil.NotFound("unknown backup version")
	}
	if err != nil {
		return nil, err
	}
	return &BackupInfo{Algorithm: v.Algorithm, AuthData: v.AuthData, Count: v.Count,
		Etag: strconv.FormatInt(v.Etag, 10), Version: strconv.FormatInt(v.Version, 10)}, nil
}

// UpdateBackup replaces a version's auth_data. The algorithm cannot change,
// and a version given in the body must be the one in the path.
func (s *Service) UpdateBackup(ctx context.Context, userID string, version int64, algorithm *string, authData json.RawMessage, bodyVersion *string) error {
	auth, err := backupAlgorithmAndAuth(algorithm, authData)
	if err != nil {
		return err
	}
	if bodyVersion != nil && *bodyVersion != strconv.FormatInt(version, 10) {
		return httputil.InvalidParam("the version in the body is not the version in the path")
	}
	return s.db.WithTx(ctx, func(tx *storage.Tx) error {
		v, err := tx.BackupVersion(ctx, userID, version)
		if errors.Is(err, storage.ErrNotFound) {
			return httputil.NotFound("unknown backup version")
		}
		if err != nil {
			return err
		}
		if v.Algorithm != *algorithm {
			return httputil.InvalidParam("the algorithm of a backup version cannot change")
		}
		return tx.UpdateBackupAuthData(ctx, userID, version, auth)
	})
}

// DeleteBackup deletes a version and its keys. Deleting a version already
// deleted succeeds; one that never existed is 404.
func (s *Service) DeleteBackup(ctx context.Context, userID string, version int64) error {
	return s.db.WithTx(ctx, func(tx *storage.Tx) error {
		if _, err := tx.BackupVersion(ctx, userID, version); err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			deleted, err := tx.BackupVersionDeleted(ctx, userID, version)
			if err != nil {
				return err
			}
			if deleted {
				return nil
			}
			return httputil.NotFound("unknown backup version")
		}
		return tx.DeleteBackupVersion(ctx, userID, version)
	})
}

// CheckBackupKey checks one session's backup data and returns it as stored.
func CheckBackupKey(roomID, sessionID string, d *BackupKeyData) (storage.BackupKey, error) {
	what := "the key of session " + sessionID + " in " + roomID
	if d.FirstMessageIndex == nil || d.ForwardedCount == nil || d.IsVerified == nil || len(d.SessionData) == 0 {
		return storage.BackupKey{}, httputil.BadJSON(what + " needs first_message_index, forwarded_count, is_verified and session_data")
	}
	if *d.FirstMessageIndex < 0 || *d.ForwardedCount < 0 {
		return storage.BackupKey{}, httputil.InvalidParam(what + ": first_message_index and forwarded_count cannot be negative")
	}
	data, err := canonicalObject(d.SessionData, what+": session_data")
	if err != nil {
		return storage.BackupKey{}, err
	}
	if roomID == "" || sessionID == "" {
		return storage.BackupKey{}, httputil.InvalidParam("empty room or session ID")
	}
	return storage.BackupKey{RoomID: roomID, SessionID: sessionID, FirstMessageIndex: *d.FirstMessageIndex,
		ForwardedCount: *d.ForwardedCount, IsVerified: *d.IsVerified, SessionData: data}, nil
}

// Replaces reports whether the backup candidate of a session replaces the
// stored one, by the spec's rule: a verified key beats an unverified one;
// then the lower first_message_index wins (it decrypts more); then the
// lower forwarded_count (fewer hops). A tie keeps the stored key.
func Replaces(candidate, stored storage.BackupKey) bool {
	if candidate.IsVerified != stored.IsVerified {
		return candidate.IsVerified
	}
	if candidate.FirstMessageIndex != stored.FirstMessageIndex {
		return candidate.FirstMessageIndex < stored.FirstMessageIndex
	}
	return candidate.ForwardedCount < stored.ForwardedCount
}

// PutBackupKeys stores keys (checked with CheckBackupKey) in version, which
// must be the current version: another one is 403
// M_WRONG_ROOM_KEYS_VERSION naming the current one. A session already
// backed up keeps its stored key unless the new one Replaces it.
func (s *Service) PutBackupKeys(ctx context.Context, userID string, version int64, keys []storage.BackupKey) (*BackupUpdate, error) {
	if len(keys) > MaxBackupKeysPerUpload {
		return nil, httputil.InvalidParam("at most " + strconv.Itoa(MaxBackupKeysPerUpload) + " keys per upload")
	}
	var out BackupUpdate
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		current, err := tx.BackupVersion(ctx, userID, 0)
		if errors.Is(err, storage.ErrNotFound) {
			return httputil.NotFound("no current backup version")
		}
		if err != nil {
			return err
		}
		if current.Version != version {
			cur := strconv.FormatInt(current.Version, 10)
			return httputil.NewError(http.StatusForbidden, CodeWrongRoomKeysVersion,
				"version "+strconv.FormatInt(version, 10)+" is not the current backup version "+cur).With("current_version", cur)
		}
		changed := false
		for _, k := range keys {
			old, err := tx.BackupKeyOf(ctx, userID, version, k.RoomID, k.SessionID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if old != nil && !Replaces(k, *old) {
				continue
			}
			if err := tx.PutBackupKey(ctx, userID, version, k); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			if err := tx.BumpBackupEtag(ctx, userID, version); err != nil {
				return err
			}
		}
		v, err := tx.BackupVersion(ctx, userID, version)
		if err != nil {
			return err
		}
		out = BackupUpdate{Etag: strconv.FormatInt(v.Etag, 10), Count: v.Count}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// BackupKeys returns the keys of a version: all (roomID ""), a room's
// (sessionID ""), or one session's. An unknown version is 404.
func (s *Service) BackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) ([]storage.BackupKey, error) {
	if _, err := s.Backup(ctx, userID, version); err != nil {
		return nil, err
	}
	return s.db.BackupKeys(ctx, userID, version, roomID, sessionID)
}

// DeleteBackupKeys deletes keys of a version (all, a room's or one
// session's) and returns the version's new etag and count.
func (s *Service) DeleteBackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) (*BackupUpdate, error) {
	var out BackupUpdate
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		if _, err := tx.BackupVersion(ctx, userID, version); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return httputil.NotFound("unknown backup version")
			}
			return err
		}
		n, err := tx.DeleteBackupKeys(ctx, userID, version, roomID, sessionID)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := tx.BumpBackupEtag(ctx, userID, version); err != nil {
				return err
			}
		}
		v, err := tx.BackupVersion(ctx, userID, version)
		if err != nil {
			return err
		}
		out = BackupUpdate{Etag: strconv.FormatInt(v.Etag, 10), Count: v.Count}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyData is the API form of a stored session backup.
func KeyData(k storage.BackupKey) map[string]any {
	return map[string]any{
		"first_message_index": k.FirstMessageIndex,
		"forwarded_count":     k.ForwardedCount,
		"is_verified":         k.IsVerified,
		"session_data":        json.RawMessage(k.SessionData),
	}
}
