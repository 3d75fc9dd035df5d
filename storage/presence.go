package storage

// Queries on presence (migrations/0005_sync.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Presence is a user's stored presence: a local user's, or a remote
// user's as its server sent it.
type Presence struct {
	UserID          string
	State           string  // online, unavailable or offline
	StatusMsg       *string // nil: none
	LastActiveTS    int64   // milliseconds since the Unix epoch, 0: never
	CurrentlyActive bool
	StreamPos       int64 // position of the last change others can see
	// RemoteTS is when a remote user's server last sent its presence (ms
	// since the Unix epoch); 0 for a local user.
	RemoteTS int64
}

// GetPresence returns userID's stored presence, or an error wrapping
// ErrNotFound when none was ever stored.
func (db *DB) GetPresence(ctx context.Context, userID string) (*Presence, error) {
	return getPresence(ctx, db.read, userID)
}

// GetPresence is DB.GetPresence within tx.
func (tx *Tx) GetPresence(ctx context.Context, userID string) (*Presence, error) {
	return getPresence(ctx, tx.q, userID)
}

func getPresence(ctx context.Context, q queryer, userID string) (*Presence, error) {
	p := Presence{UserID: userID}
	var msg sql.NullString
	err := q.QueryRowContext(ctx, `
		SELECT state, status_msg, last_active_ts, currently_active, stream_pos, remote_ts
		FROM presence WHERE user_id = $1`, userID).
		Scan(&p.State, &msg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos, &p.RemoteTS)
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
		INSERT INTO presence (user_id, state, status_msg, last_active_ts, currently_active, stream_pos, remote_ts)
		VALUES ($1, $2, $3, $4, $5, $6, $8)
		ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,
			last_active_ts = excluded.last_active_ts, currently_active = excluded.currently_active,
			stream_pos = CASE WHEN $7 THEN excluded.stream_pos ELSE presence.stream_pos END,
			remote_ts = excluded.remote_ts`,
		p.UserID, p.State, p.StatusMsg, p.LastActiveTS, p.CurrentlyActive, pos, newPos, p.RemoteTS)
	if err != nil {
		return 0, fmt.Errorf("store presence of %q: %w", p.UserID, err)
	}
	return pos, nil
}

// PresenceVisibleTo returns the presence of userID and of every user
// joined to a room userID is joined to, changed at stream positions in
// (since, upto], oldest change first: the presence section of userID's
// sync. since 0 returns all of it.
func (db *DB) PresenceVisibleTo(ctx context.Context, userID string, since, upto int64) ([]Presence, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT p.user_id, p.state, p.status_msg, p.last_active_ts, p.currently_active, p.stream_pos
		FROM presence p
		WHERE p.stream_pos > $2 AND p.stream_pos <= $3 AND (p.user_id = $1 OR EXISTS (
			SELECT 1 FROM room_memberships theirs
			JOIN room_memberships mine ON mine.room_nid = theirs.room_nid
			WHERE theirs.user_id = p.user_id AND theirs.membership = 'join'
			AND mine.user_id = $1 AND mine.membership = 'join'))
		ORDER BY p.stream_pos`, userID, since, upto)
	if err != nil {
		return nil, fmt.Errorf("presence for %q since %d: %w", userID, since, err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var (
			p   Presence
			msg sql.NullString
		)
		if err := rows.Scan(&p.UserID, &p.State, &msg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos); err != nil {
			return nil, fmt.Errorf("presence for %q since %d: %w", userID, since, err)
		}
		if msg.Valid {
			p.StatusMsg = &msg.String
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("presence for %q since %d: %w", userID, since, err)
	}
	return out, nil
}

// SharesRoom reports whether two users are joined to a common room (who
// may see whose presence).
func (db *DB) SharesRoom(ctx context.Context, a, b string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `
		SELECT 1 FROM room_memberships x JOIN room_memberships y ON y.room_nid = x.room_nid
		WHERE x.user_id = $1 AND x.membership = 'join' AND y.user_id = $2 AND y.membership = 'join'
		LIMIT 1`, a, b).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("shared rooms of %q and %q: %w", a, b, err)
	}
	return true, nil
}

// StalePresence returns the local users marked online whose last activity
// is before cutoffTS (ms since the epoch): those whose clients stopped
// syncing, for the server to mark offline.
func (db *DB) StalePresence(ctx context.Context, cutoffTS int64, limit int) ([]string, error) {
	return db.stalePresence(ctx, `
		SELECT user_id FROM presence WHERE state = 'online' AND remote_ts = 0 AND last_active_ts < $1 LIMIT $2`,
		cutoffTS, limit)
}

// StaleRemotePresence returns the remote users not marked offline whose
// server last sent their presence before cutoffTS (ms since the epoch):
// that server fell silent, for this server to mark them offline.
func (db *DB) StaleRemotePresence(ctx context.Context, cutoffTS int64, limit int) ([]string, error) {
	return db.stalePresence(ctx, `
		SELECT user_id FROM presence WHERE state <> 'offline' AND remote_ts > 0 AND remote_ts < $1 LIMIT $2`,
		cutoffTS, limit)
}

func (db *DB) stalePresence(ctx context.Context, q string, cutoffTS int64, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, q, cutoffTS, limit)
	if err != nil {
		return nil, fmt.Errorf("stale presence: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("stale presence: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// PresenceAfter returns up to limit users' presence changed at stream
// positions after since, in stream order (the federation sender's feed).
func (db *DB) PresenceAfter(ctx context.Context, since int64, limit int) ([]Presence, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT user_id, state, status_msg, last_active_ts, currently_active, stream_pos, remote_ts
		FROM presence WHERE stream_pos > $1 ORDER BY stream_pos LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("presence after %d: %w", since, err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var (
			p   Presence
			msg sql.NullString
		)
		if err := rows.Scan(&p.UserID, &p.State, &msg, &p.LastActiveTS, &p.CurrentlyActive, &p.StreamPos, &p.RemoteTS); err != nil {
			return nil, fmt.Errorf("presence after %d: %w", since, err)
		}
		if msg.Valid {
			p.StatusMsg = &msg.String
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("presence after %d: %w", since, err)
	}
	return out, nil
}
