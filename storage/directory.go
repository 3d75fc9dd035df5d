package storage

// Queries on the room_directory and forgotten_rooms tables
// (migrations/0004_room_directory.sql).

import (
	"context"
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

// ForgetRoom records that userID forgot roomID while their membership
// event in it was the one at stream position membershipPos (client-server
// API "Leaving rooms"). The caller checked that the user has left.
func (db *DB) ForgetRoom(ctx context.Context, userID, roomID string, membershipPos int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `
			INSERT INTO forgotten_rooms (user_id, room_id, membership_pos) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, room_id) DO UPDATE SET membership_pos = excluded.membership_pos`,
			userID, roomID, membershipPos); err != nil {
			return fmt.Errorf("forget room %q for %q: %w", roomID, userID, err)
		}
		return nil
	})
}

// ForgottenRooms returns the rooms userID has forgotten, each with the
// stream position of the membership event it was forgotten at. A room is
// forgotten only while the user's current membership event in it is at
// that position or earlier: a later membership event (a new join, invite
// or knock) ends the forgetting. Use IsForgotten for that comparison.
func (db *DB) ForgottenRooms(ctx context.Context, userID string) (map[string]int64, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT room_id, membership_pos FROM forgotten_rooms WHERE user_id = $1`, userID)
	if err != nil {
		return nil, fmt.Errorf("forgotten rooms of %q: %w", userID, err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var id string
		var pos int64
		if err := rows.Scan(&id, &pos); err != nil {
			return nil, fmt.Errorf("forgotten rooms of %q: %w", userID, err)
		}
		m[id] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("forgotten rooms of %q: %w", userID, err)
	}
	return m, nil
}

// IsForgotten reports whether userID has forgotten roomID, given the
// stream position of the user's current membership event in the room.
func (db *DB) IsForgotten(ctx context.Context, userID, roomID string, currentMembershipPos int64) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM forgotten_rooms
		WHERE user_id = $1 AND room_id = $2 AND membership_pos >= $3`,
		userID, roomID, currentMembershipPos).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is room %q forgotten by %q: %w", roomID, userID, err)
	}
	return n > 0, nil
}
