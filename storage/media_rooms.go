package storage

// Which media a room's events refer to, for the admin endpoints that
// quarantine or delete a room's media.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
)

// mxcInJSON matches an mxc:// URI inside event JSON: the server name's
// characters (letters, digits, '.', '-', ':' and the brackets of IPv6
// literals) and the media ID's (letters, digits, '_' and '-').
var mxcInJSON = regexp.MustCompile(`mxc://([A-Za-z0-9.\-:\[\]]+)/([A-Za-z0-9_\-]+)`)

// RoomMedia returns the media items that events of roomID refer to
// (message attachments, thumbnails, room avatars, ...), each once, or an
// error wrapping ErrNotFound for an unknown room.
func (db *DB) RoomMedia(ctx context.Context, roomID string) ([]MediaKey, error) {
	var roomNID int64
	if err := db.read.QueryRowContext(ctx, `SELECT room_nid FROM rooms WHERE room_id = $1`, roomID).Scan(&roomNID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("room %s: %w", roomID, err)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT json FROM events WHERE room_nid = $1 AND json LIKE '%mxc://%'`, roomNID)
	if err != nil {
		return nil, fmt.Errorf("media of room %s: %w", roomID, err)
	}
	defer rows.Close()
	seen := map[MediaKey]bool{}
	var out []MediaKey
	for rows.Next() {
		var js string
		if err := rows.Scan(&js); err != nil {
			return nil, fmt.Errorf("media of room %s: %w", roomID, err)
		}
		for _, m := range mxcInJSON.FindAllStringSubmatch(js, -1) {
			k := MediaKey{Origin: m[1], MediaID: m[2]}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("media of room %s: %w", roomID, err)
	}
	return out, nil
}
