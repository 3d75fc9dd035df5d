package storage

// Queries on the room_directory and forgotten_rooms tables
// (migrations/0004_room_directory.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SetRoomPublished publishes roomID in the server's room directory
// (visibility "public") or removes it ("private"). Either is idempotent.
func (db *DB) SetRoomPublished(ctx context.Context, roomID string, published bool) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		var err error
		if published {
			_, err = tx.tx.ExecContext(ctx, `
				INSERT INTO room_directory (room_id, published_ts) VALUES ($1, $2)
				ON CONFLICT (room_id) DO NOTHING`, roomID, time.Now().UnixMilli())
		} else {
			_, err = tx.tx.ExecContext(ctx, `DELETE FROM room_directory WHERE room_id = $1`, roomID)
		}
		if err != nil {
			return fmt.Errorf("set room %q published=%v: %w", roomID, published, err)
		}
		return nil
	})
}

// IsRoomPublished reports whether roomID is in the room directory.
func (db *DB) IsRoomPublished(ctx context.Context, roomID string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM room_directory WHERE room_id = $1`, roomID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is room %q published: %w", roomID, err)
	}
	return n > 0, nil
}

// PublishedRooms returns every room in the room directory, sorted by room
// ID.
func (db *DB) PublishedRooms(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id FROM room_directory ORDER BY room_id`)
	if err != nil {
		return nil, fmt.Errorf("published rooms: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("published rooms: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("published rooms: %w", err)
	}
	return ids, nil
}

// ForgetRoom records that userID forgot roomID (client-server-api
// "Leaving rooms"), as of the user's current membership event in the room;
// the caller checked that the user has left. It returns an error wrapping
// ErrNotFound when the user has no membership in the room.
//
// The room stays forgotten until the user's next membership event (a new
// join, invite or knock): IsRoomForgotten and ForgottenRooms compare the
// stream position stored here with that of the current membership event,
// so no writer of member events has to clear anything.
func (db *DB) ForgetRoom(ctx context.Context, userID, roomID string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		var pos sql.NullInt64
		err := tx.q.QueryRowContext(ctx, `
			SELECT e.stream_pos FROM room_memberships m
			JOIN rooms r ON r.room_nid = m.room_nid
			JOIN events e ON e.event_nid = m.event_nid
			WHERE r.room_id = $1 AND m.user_id = $2`, roomID, userID).Scan(&pos)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("forget room %q for %q: no membership: %w", roomID, userID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("forget room %q for %q: %w", roomID, userID, err)
		}
		if _, err := tx.tx.ExecContext(ctx, `
			INSERT INTO forgotten_rooms (user_id, room_id, membership_pos) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, room_id) DO UPDATE SET membership_pos = excluded.membership_pos`,
			userID, roomID, pos.Int64); err != nil {
			return fmt.Errorf("forget room %q for %q: %w", roomID, userID, err)
		}
		return nil
	})
}

// forgottenWhere selects the forgotten_rooms rows (f) still in force: the
// user's current membership event in the room is the one forgotten (or an
// earlier one).
const forgottenWhere = `
	FROM forgotten_rooms f
	JOIN rooms r ON r.room_id = f.room_id
	JOIN room_memberships m ON m.room_nid = r.room_nid AND m.user_id = f.user_id
	JOIN events e ON e.event_nid = m.event_nid
	WHERE f.user_id = $1 AND COALESCE(e.stream_pos, 0) <= f.membership_pos`

// IsRoomForgotten reports whether userID has forgotten roomID (and has had
// no membership event in it since).
func (db *DB) IsRoomForgotten(ctx context.Context, userID, roomID string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) `+forgottenWhere+` AND f.room_id = $2`,
		userID, roomID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is room %q forgotten by %q: %w", roomID, userID, err)
	}
	return n > 0, nil
}

// ForgottenRooms returns the rooms userID has forgotten (and has had no
// membership event in since), sorted; /sync leaves them out.
func (db *DB) ForgottenRooms(ctx context.Context, userID string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT f.room_id `+forgottenWhere+` ORDER BY f.room_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("forgotten rooms of %q: %w", userID, err)
	}
	ids, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("forgotten rooms of %q: %w", userID, err)
	}
	return ids, nil
}
