package storage

// Queries on federation_edu_queue and federation_cursors
// (migrations/0013_federation_edus.sql): the federation sender's durable
// EDU queue, and how far it has turned other streams into EDUs.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// QueuedEDU is one EDU waiting to be sent to one destination.
type QueuedEDU struct {
	ID          int64 // orders a destination's EDUs
	Destination string
	Type        string
	Key         string // "" when no later EDU replaces this one
	Content     []byte // the EDU's content, JSON
}

// EnqueueEDU queues the EDU for each destination. With a key, it replaces
// the EDU of the same type and key still waiting for a destination (an
// older receipt of the same user in the same room), which then takes its
// place at the end of the queue.
func (tx *Tx) EnqueueEDU(ctx context.Context, destinations []string, eduType, key string, content []byte) error {
	for _, d := range destinations {
		if key != "" {
			_, err := tx.tx.ExecContext(ctx, `
				DELETE FROM federation_edu_queue WHERE destination = $1 AND edu_type = $2 AND edu_key = $3`,
				d, eduType, key)
			if err != nil {
				return fmt.Errorf("replace the queued %s for %s: %w", eduType, d, err)
			}
		}
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO federation_edu_queue (destination, edu_type, edu_key, content) VALUES ($1, $2, $3, $4)`,
			d, eduType, key, string(content))
		if err != nil {
			return fmt.Errorf("queue a %s for %s: %w", eduType, d, err)
		}
	}
	return nil
}

// EnqueueEDU is Tx.EnqueueEDU in a transaction of its own.
func (db *DB) EnqueueEDU(ctx context.Context, destinations []string, eduType, key string, content []byte) error {
	if len(destinations) == 0 {
		return nil
	}
	return db.WithTx(ctx, func(tx *Tx) error { return tx.EnqueueEDU(ctx, destinations, eduType, key, content) })
}

// QueuedEDUs returns up to limit of the destination's queued EDUs, oldest
// first.
func (db *DB) QueuedEDUs(ctx context.Context, destination string, limit int) ([]QueuedEDU, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT id, edu_type, edu_key, content FROM federation_edu_queue WHERE destination = $1
		ORDER BY id LIMIT $2`, destination, limit)
	if err != nil {
		return nil, fmt.Errorf("EDU queue of %s: %w", destination, err)
	}
	defer rows.Close()
	var out []QueuedEDU
	for rows.Next() {
		q := QueuedEDU{Destination: destination}
		var content string
		if err := rows.Scan(&q.ID, &q.Type, &q.Key, &content); err != nil {
			return nil, fmt.Errorf("EDU queue of %s: %w", destination, err)
		}
		q.Content = []byte(content)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("EDU queue of %s: %w", destination, err)
	}
	return out, nil
}

// QueuedEDUCount returns how many EDUs wait for the destination.
func (db *DB) QueuedEDUCount(ctx context.Context, destination string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM federation_edu_queue WHERE destination = $1`,
		destination).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("EDU queue length of %s: %w", destination, err)
	}
	return n, nil
}

// DeleteQueuedEDUs removes the destination's EDUs with the given IDs (those
// of a transaction that was delivered or refused).
func (db *DB) DeleteQueuedEDUs(ctx context.Context, destination string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return db.WithTx(ctx, func(tx *Tx) error {
		for part := range chunks(ids, inChunk-1) {
			args := make([]any, 0, len(part)+1)
			args = append(args, destination)
			for _, id := range part {
				args = append(args, id)
			}
			_, err := tx.tx.ExecContext(ctx, `DELETE FROM federation_edu_queue WHERE destination = $1 AND id IN (`+
				inList(2, len(part))+`)`, args...)
			if err != nil {
				return fmt.Errorf("dequeue EDUs for %s: %w", destination, err)
			}
		}
		return nil
	})
}

// EDUQueueDestinations returns every destination with queued EDUs.
func (db *DB) EDUQueueDestinations(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT destination FROM federation_edu_queue ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("EDU queue destinations: %w", err)
	}
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("EDU queue destinations: %w", err)
	}
	return out, nil
}

// FederationCursor returns the position stored under name, with found
// false when none is.
func (db *DB) FederationCursor(ctx context.Context, name string) (pos int64, found bool, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT pos FROM federation_cursors WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("federation cursor %q: %w", name, err)
	}
	return pos, true, nil
}

// SetFederationCursor stores pos under name.
func (tx *Tx) SetFederationCursor(ctx context.Context, name string, pos int64) error {
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO federation_cursors (name, pos) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET pos = excluded.pos`, name, pos)
	if err != nil {
		return fmt.Errorf("set federation cursor %q: %w", name, err)
	}
	return nil
}

// UsersSharingRoomWith returns the users joined to a room userID is joined
// to (userID included): whose servers hear of the user's presence and
// devices.
func (db *DB) UsersSharingRoomWith(ctx context.Context, userID string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT DISTINCT theirs.user_id FROM room_memberships mine
		JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid
		WHERE mine.user_id = $1 AND mine.membership = 'join' AND theirs.membership = 'join'`, userID)
	if err != nil {
		return nil, fmt.Errorf("users sharing a room with %q: %w", userID, err)
	}
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("users sharing a room with %q: %w", userID, err)
	}
	return out, nil
}

// SharesRoomWithServer reports whether userID is joined to a room where a
// user of serverName is joined too.
func (db *DB) SharesRoomWithServer(ctx context.Context, userID, serverName string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `
		SELECT 1 FROM room_memberships theirs
		JOIN room_memberships ours ON ours.room_nid = theirs.room_nid
		WHERE theirs.user_id = $1 AND theirs.membership = 'join'
		AND ours.membership = 'join' AND ours.user_id LIKE $2 ESCAPE '\'
		LIMIT 1`, userID, "%:"+likeEscape(serverName)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rooms of %q shared with %s: %w", userID, serverName, err)
	}
	return true, nil
}

// likeEscape escapes LIKE's wildcards (and the escape character) in s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
