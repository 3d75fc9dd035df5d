package storage

// Queries on the media repository's tables (migrations/0011_media.sql):
// media items, their thumbnails and the URL preview cache. The file
// contents are in mediaapi's blob store, named by SHA-256; a blob may be
// shared by several rows (identical uploads, a thumbnail equal to its
// original), so it is deleted only when MediaBlobInUse says no row uses it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrMediaExists is returned (wrapped) when a media ID is taken, or when
// content is put to a media ID that already has it.
var ErrMediaExists = errors.New("media already exists")

// Media is one mxc:// URI's row.
type Media struct {
	Origin  string // server name of mxc://<origin>/<id>
	MediaID string
	// SHA256 names the content's blob; "" while an asynchronous upload
	// waits for its content.
	SHA256      string
	Size        int64
	ContentType string
	UploadName  string
	UserID      string // local uploader; "" for remote media
	CreatedTS   int64
	UploadedTS  int64 // 0 while pending
	ExpiresTS   int64 // a pending upload's expiry; 0 otherwise
	Quarantined bool
	// LegacyFrozen: created while the unauthenticated endpoints were
	// frozen, so served on the authenticated ones only.
	LegacyFrozen bool
}

// Pending reports whether m is a created ID still waiting for content.
func (m *Media) Pending() bool { return m.SHA256 == "" }

// MediaKey names a media item.
type MediaKey struct {
	Origin  string
	MediaID string
}

const mediaColumns = `origin, media_id, sha256, size_bytes, content_type, upload_name, user_id,
	created_ts, uploaded_ts, expires_ts, quarantined, legacy_frozen`

func scanMedia(row interface{ Scan(...any) error }) (*Media, error) {
	var m Media
	var sha sql.NullString
	if err := row.Scan(&m.Origin, &m.MediaID, &sha, &m.Size, &m.ContentType, &m.UploadName, &m.UserID,
		&m.CreatedTS, &m.UploadedTS, &m.ExpiresTS, &m.Quarantined, &m.LegacyFrozen); err != nil {
		return nil, err
	}
	m.SHA256 = sha.String
	return &m, nil
}

func nullIfEmpty(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateMedia stores a new media row: with content (SHA256 set) for an
// upload or a cached remote item, or pending for POST /create. It returns
// an error wrapping ErrMediaExists if (origin, media ID) is taken.
func (db *DB) CreateMedia(ctx context.Context, m *Media) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			INSERT INTO media (`+mediaColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (origin, media_id) DO NOTHING`,
			m.Origin, m.MediaID, nullIfEmpty(m.SHA256), m.Size, m.ContentType, m.UploadName, m.UserID,
			m.CreatedTS, m.UploadedTS, m.ExpiresTS, m.Quarantined, m.LegacyFrozen)
		if err != nil {
			return fmt.Errorf("create media %s/%s: %w", m.Origin, m.MediaID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("create media %s/%s: %w", m.Origin, m.MediaID, err)
		} else if n == 0 {
			return fmt.Errorf("create media %s/%s: %w", m.Origin, m.MediaID, ErrMediaExists)
		}
		return nil
	})
}

// ReplaceRemoteMedia stores (or refreshes) the cached copy of a remote item.
func (db *DB) ReplaceRemoteMedia(ctx context.Context, m *Media) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO media (`+mediaColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (origin, media_id) DO UPDATE SET sha256 = $3, size_bytes = $4,
				content_type = $5, upload_name = $6, created_ts = $8, uploaded_ts = $9,
				legacy_frozen = $12`,
			m.Origin, m.MediaID, nullIfEmpty(m.SHA256), m.Size, m.ContentType, m.UploadName, m.UserID,
			m.CreatedTS, m.UploadedTS, m.ExpiresTS, m.Quarantined, m.LegacyFrozen)
		if err != nil {
			return fmt.Errorf("cache remote media %s/%s: %w", m.Origin, m.MediaID, err)
		}
		return nil
	})
}

// GetMedia returns a media row, or an error wrapping ErrNotFound.
func (db *DB) GetMedia(ctx context.Context, origin, mediaID string) (*Media, error) {
	m, err := scanMedia(db.read.QueryRowContext(ctx,
		`SELECT `+mediaColumns+` FROM media WHERE origin = $1 AND media_id = $2`, origin, mediaID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("media %s/%s: %w", origin, mediaID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get media %s/%s: %w", origin, mediaID, err)
	}
	return m, nil
}

// CompleteMediaUpload gives a pending media ID its content. It returns an
// error wrapping ErrMediaExists if the ID already has content (another
// upload won), ErrNotFound if it does not exist.
func (db *DB) CompleteMediaUpload(ctx context.Context, m *Media) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE media SET sha256 = $3, size_bytes = $4, content_type = $5, upload_name = $6,
				uploaded_ts = $7, expires_ts = 0, legacy_frozen = $8
			WHERE origin = $1 AND media_id = $2 AND sha256 IS NULL`,
			m.Origin, m.MediaID, m.SHA256, m.Size, m.ContentType, m.UploadName, m.UploadedTS, m.LegacyFrozen)
		if err != nil {
			return fmt.Errorf("complete upload %s/%s: %w", m.Origin, m.MediaID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("complete upload %s/%s: %w", m.Origin, m.MediaID, err)
		} else if n == 0 {
			return fmt.Errorf("complete upload %s/%s: %w", m.Origin, m.MediaID, ErrMediaExists)
		}
		return nil
	})
}

// MediaUsage returns the bytes of content userID has uploaded.
func (db *DB) MediaUsage(ctx context.Context, userID string) (int64, error) {
	var n sql.NullInt64
	if err := db.read.QueryRowContext(ctx,
		`SELECT SUM(size_bytes) FROM media WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("media usage of %s: %w", userID, err)
	}
	return n.Int64, nil
}

// CountPendingUploads returns userID's created media IDs that have no
// content yet and have not expired at now (ms).
func (db *DB) CountPendingUploads(ctx context.Context, userID string, now int64) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM media WHERE user_id = $1 AND sha256 IS NULL AND expires_ts > $2`,
		userID, now).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending uploads of %s: %w", userID, err)
	}
	return n, nil
}

// DeleteExpiredPendingUploads deletes the created media IDs whose content
// never came before their expiry, and returns how many.
func (db *DB) DeleteExpiredPendingUploads(ctx context.Context, now int64) (int64, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx,
			`DELETE FROM media WHERE sha256 IS NULL AND expires_ts > 0 AND expires_ts <= $1`, now)
		if err != nil {
			return fmt.Errorf("delete expired uploads: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// MediaBlobInUse reports whether any media or thumbnail row uses the blob
// sha256.
func (db *DB) MediaBlobInUse(ctx context.Context, sha256 string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM media WHERE sha256 = $1 LIMIT 1) a) +
		(SELECT COUNT(*) FROM (SELECT 1 FROM media_thumbnails WHERE sha256 = $1 LIMIT 1) b)`, sha256).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is blob %s in use: %w", sha256, err)
	}
	return n > 0, nil
}

// DeleteMedia deletes a media item and its thumbnails and returns the blobs
// they used (which other rows may still use), or an error wrapping
// ErrNotFound.
func (db *DB) DeleteMedia(ctx context.Context, origin, mediaID string) (blobs []string, err error) {
	err = db.WithTx(ctx, func(tx *Tx) error {
		blobs = blobs[:0]
		rows, err := tx.tx.QueryContext(ctx, `
			SELECT sha256 FROM media WHERE origin = $1 AND media_id = $2 AND sha256 IS NOT NULL
			UNION SELECT sha256 FROM media_thumbnails WHERE origin = $1 AND media_id = $2`, origin, mediaID)
		if err != nil {
			return fmt.Errorf("delete media %s/%s: %w", origin, mediaID, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return fmt.Errorf("delete media %s/%s: %w", origin, mediaID, err)
			}
			blobs = append(blobs, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete media %s/%s: %w", origin, mediaID, err)
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM media_thumbnails WHERE origin = $1 AND media_id = $2`, origin, mediaID); err != nil {
			return fmt.Errorf("delete media %s/%s: %w", origin, mediaID, err)
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM media WHERE origin = $1 AND media_id = $2`, origin, mediaID)
		return checkOneRow(res, err, "delete media "+origin+"/"+mediaID)
	})
	return blobs, err
}

// SetMediaQuarantined quarantines a media item (or lifts it), or returns
// an error wrapping ErrNotFound.
func (db *DB) SetMediaQuarantined(ctx context.Context, origin, mediaID string, quarantined bool) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx,
			`UPDATE media SET quarantined = $3 WHERE origin = $1 AND media_id = $2`, origin, mediaID, quarantined)
		return checkOneRow(res, err, "quarantine media "+origin+"/"+mediaID)
	})
}

// QuarantineUserMedia quarantines every item userID uploaded and returns
// how many were not quarantined before.
func (db *DB) QuarantineUserMedia(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx,
			`UPDATE media SET quarantined = TRUE WHERE user_id = $1 AND quarantined = FALSE`, userID)
		if err != nil {
			return fmt.Errorf("quarantine media of %s: %w", userID, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ListUserMedia returns the media items userID uploaded, newest first.
func (db *DB) ListUserMedia(ctx context.Context, userID string) ([]MediaKey, error) {
	return queryMediaKeys(ctx, db.read, `SELECT origin, media_id FROM media WHERE user_id = $1 ORDER BY created_ts DESC`, userID)
}

// RemoteMediaCachedBefore returns up to limit cached remote items (origin
// other than local) cached before ts (ms).
func (db *DB) RemoteMediaCachedBefore(ctx context.Context, local string, ts int64, limit int) ([]MediaKey, error) {
	return queryMediaKeys(ctx, db.read, `SELECT origin, media_id FROM media
		WHERE origin <> $1 AND created_ts < $2 AND quarantined = FALSE ORDER BY created_ts LIMIT $3`, local, ts, limit)
}

func queryMediaKeys(ctx context.Context, q queryer, query string, args ...any) ([]MediaKey, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	defer rows.Close()
	var out []MediaKey
	for rows.Next() {
		var k MediaKey
		if err := rows.Scan(&k.Origin, &k.MediaID); err != nil {
			return nil, fmt.Errorf("list media: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	return out, nil
}

// MediaThumbnail is one stored thumbnail.
type MediaThumbnail struct {
	Origin, MediaID string
	Width, Height   int
	Method          string // "crop" or "scale"
	Animated        bool
	SHA256          string
	Size            int64
	ContentType     string
	CreatedTS       int64
}

// GetMediaThumbnail returns a stored thumbnail, or an error wrapping
// ErrNotFound.
func (db *DB) GetMediaThumbnail(ctx context.Context, origin, mediaID string, width, height int, method string, animated bool) (*MediaThumbnail, error) {
	t := MediaThumbnail{Origin: origin, MediaID: mediaID, Width: width, Height: height, Method: method, Animated: animated}
	err := db.read.QueryRowContext(ctx, `
		SELECT sha256, size_bytes, content_type, created_ts FROM media_thumbnails
		WHERE origin = $1 AND media_id = $2 AND width = $3 AND height = $4 AND method = $5 AND animated = $6`,
		origin, mediaID, width, height, method, animated).Scan(&t.SHA256, &t.Size, &t.ContentType, &t.CreatedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thumbnail of %s/%s: %w", origin, mediaID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get thumbnail of %s/%s: %w", origin, mediaID, err)
	}
	return &t, nil
}

// AddMediaThumbnail stores a thumbnail; one already stored for the same
// size and method is kept.
func (db *DB) AddMediaThumbnail(ctx context.Context, t *MediaThumbnail) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO media_thumbnails (origin, media_id, width, height, method, animated, sha256, size_bytes, content_type, created_ts)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (origin, media_id, width, height, method, animated) DO NOTHING`,
			t.Origin, t.MediaID, t.Width, t.Height, t.Method, t.Animated, t.SHA256, t.Size, t.ContentType, t.CreatedTS)
		if err != nil {
			return fmt.Errorf("add thumbnail of %s/%s: %w", t.Origin, t.MediaID, err)
		}
		return nil
	})
}

// GetURLPreview returns the cached OpenGraph JSON of url if it has not
// expired at now (ms); ok is false otherwise.
func (db *DB) GetURLPreview(ctx context.Context, url string, now int64) (ogJSON string, ok bool, err error) {
	err = db.read.QueryRowContext(ctx,
		`SELECT og_json FROM media_url_previews WHERE url = $1 AND expires_ts > $2`, url, now).Scan(&ogJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get url preview: %w", err)
	}
	return ogJSON, true, nil
}

// PutURLPreview caches the OpenGraph JSON of url until expires (ms).
func (db *DB) PutURLPreview(ctx context.Context, url, ogJSON string, fetched, expires int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO media_url_previews (url, og_json, fetched_ts, expires_ts) VALUES ($1, $2, $3, $4)
			ON CONFLICT (url) DO UPDATE SET og_json = $2, fetched_ts = $3, expires_ts = $4`,
			url, ogJSON, fetched, expires)
		if err != nil {
			return fmt.Errorf("put url preview: %w", err)
		}
		return nil
	})
}

// DeleteExpiredURLPreviews drops cached previews that expired before now.
func (db *DB) DeleteExpiredURLPreviews(ctx context.Context, now int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM media_url_previews WHERE expires_ts <= $1`, now); err != nil {
			return fmt.Errorf("delete expired url previews: %w", err)
		}
		return nil
	})
}
