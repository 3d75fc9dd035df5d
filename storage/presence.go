package storage

// Queries on presence (migrations/0005_sync.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Presence is a local user's stored presence.
type Presence struct {
	UserID          string
	State           string  // online, unavailable or offline
	StatusMsg       *string // nil: none
	LastActiveTS    int64   // milliseconds since the Unix epoch, 0: never
	CurrentlyActive bool
	StreamPos       int64 // position of the last change others can see
}

// GetPresence returns userID's stored presence, or an error wrapping
// ErrNotFound when none was ever stored.
func (db *DB) GetPresence(ctx context.Context, userID string) (*Presence, error) {
	return getPresence(ctx, db.read, userID)
}

// GetPresence is DB.GetPresence within tx.
func (tx *Tx) GetPresence(ctx context.Context, userID string) (*Presence, error) {
	return getPresence(ctx, tx.tx, userID)
}

func getPresence(ctx context.Context, q queryer, userID string) (*Presence, error) {
	p := Presence{UserID: userID}
	var msg sql.NullString
	err := q.QueryRowContext(ctx, `
		SELECT state, status_msg, last_active_ts, currently_active, stream_pos
		FROM presence WHERE user_id = $1`, userID).
		Scan(&p.State, &msg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("presence of %q: %w", userID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get presence of %q: %w", userID, err)
	}
	if msg.Valid {
		p.StatusMsg = &msg.String
	}
	return &p, nil
}

// PutPresence stores p. With newPos it takes a new stream position (a change
// other users should be told about) and returns it; otherwise it keeps the
// stored position (a last_active_ts bump) and returns 0.
func (tx *Tx) PutPresence(ctx context.Context, p Presence, newPos bool) (int64, error) {
	var pos int64
	if newPos {
		var err error
		if pos, err = tx.NextStreamPos(ctx); err != nil {
			return 0, err
		}
	}
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO presence (user_id, state, status_msg, last_active_ts, currently_active, stream_pos)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,
			last_active_ts = excluded.last_active_ts, currently_active = excluded.currently_active,
			stream_pos = CASE WHEN $7 THEN excluded.stream_pos ELSE presence.stream_pos END`,
		p.UserID, p.State, p.StatusMsg, p.LastActiveTS, p.CurrentlyActive, pos, newPos)
	if err != nil {
		return 0, fmt.Errorf("store presence of %q: %w", p.UserID, err)
	}
	return pos, nil
}

// PresenceSince returns the presence of every user whose presence changed at
// a stream position in (since, upto], for the caller to keep the users its
// client shares a room with.
func (db *DB) PresenceSince(ctx context.Context, since, upto int64) ([]Presence, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT user_id, state, status_msg, last_active_ts, currently_active, stream_pos
		FROM presence WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos`, since, upto)
	if err != nil {
		return nil, fmt.Errorf("presence since %d: %w", since, err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var (
			p   Presence
			msg sql.NullString
		)
		if err := rows.Scan(&p.UserID, &p.State, &msg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos); err != nil {
			return nil, fmt.Errorf("presence since %d: %w", since, err)
		}
		if msg.Valid {
			p.StatusMsg = &msg.String
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("presence since %d: %w", since, err)
	}
	return out, nil
}
