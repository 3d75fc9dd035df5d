package storage

// Queries on federation_queue and federation_destinations
// (migrations/0009_federation_queue.sql): the federation sender's
// durable per-destination queue and backoff.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// QueuedPDU is one event waiting to be sent to one destination.
type QueuedPDU struct {
	Destination string
	Pos         int64 // the event's stream position
	RoomID      string
	EventID     string
}

// EnqueuePDUs queues events, each for its destination, in one
// transaction (the sender queues a burst of events with one commit).
// Queueing the same event (pos) for a destination twice keeps one row, so
// a redelivered bus message is harmless.
func (db *DB) EnqueuePDUs(ctx context.Context, pdus []QueuedPDU) error {
	if len(pdus) == 0 {
		return nil
	}
	return db.WithTx(ctx, func(tx *Tx) error {
		for _, q := range pdus {
			_, err := tx.tx.ExecContext(ctx, `
				INSERT INTO federation_queue (destination, pos, room_id, event_id) VALUES ($1, $2, $3, $4)
				ON CONFLICT (destination, pos) DO NOTHING`, q.Destination, q.Pos, q.RoomID, q.EventID)
			if err != nil {
				return fmt.Errorf("queue %s for %s: %w", q.EventID, q.Destination, err)
			}
		}
		return nil
	})
}

// QueuedPDUs returns up to limit of the destination's queued events, in
// stream order.
func (db *DB) QueuedPDUs(ctx context.Context, destination string, limit int) ([]QueuedPDU, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT pos, room_id, event_id FROM federation_queue WHERE destination = $1
		ORDER BY pos LIMIT $2`, destination, limit)
	if err != nil {
		return nil, fmt.Errorf("queue of %s: %w", destination, err)
	}
	defer rows.Close()
	var out []QueuedPDU
	for rows.Next() {
		q := QueuedPDU{Destination: destination}
		if err := rows.Scan(&q.Pos, &q.RoomID, &q.EventID); err != nil {
			return nil, fmt.Errorf("queue of %s: %w", destination, err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue of %s: %w", destination, err)
	}
	return out, nil
}

// QueuedPDUCount returns how many events wait for the destination.
func (db *DB) QueuedPDUCount(ctx context.Context, destination string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM federation_queue WHERE destination = $1`,
		destination).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("queue length of %s: %w", destination, err)
	}
	return n, nil
}

// DeleteQueuedPDUs removes the destination's rows at the given positions
// (the events of a transaction that was delivered or dropped).
func (db *DB) DeleteQueuedPDUs(ctx context.Context, destination string, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	return db.WithTx(ctx, func(tx *Tx) error {
		for part := range chunks(positions, inChunk-1) {
			args := make([]any, 0, len(part)+1)
			args = append(args, destination)
			for _, p := range part {
				args = append(args, p)
			}
			_, err := tx.tx.ExecContext(ctx, `DELETE FROM federation_queue WHERE destination = $1 AND pos IN (`+
				inList(2, len(part))+`)`, args...)
			if err != nil {
				return fmt.Errorf("dequeue for %s: %w", destination, err)
			}
		}
		return nil
	})
}

// CollapseQueuedPDUs keeps, of the destination's queue, only the latest
// event of each room and returns how many rows it dropped. It is the
// catch-up after an outage: the remote fetches the events in between
// with /get_missing_events when it sees the latest one.
func (db *DB) CollapseQueuedPDUs(ctx context.Context, destination string) (int, error) {
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			DELETE FROM federation_queue WHERE destination = $1 AND pos < (
				SELECT MAX(q.pos) FROM federation_queue q
				WHERE q.destination = federation_queue.destination AND q.room_id = federation_queue.room_id)`,
			destination)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("collapse the queue of %s: %w", destination, err)
	}
	return int(n), nil
}

// QueueDestinations returns every destination with queued events.
func (db *DB) QueueDestinations(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT destination FROM federation_queue ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("queued destinations: %w", err)
	}
	defer rows.Close()
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("queued destinations: %w", err)
	}
	return out, nil
}

// DestinationBackoff returns the destination's failures in a row and the
// time (ms) before which it is not to be tried; 0, 0 when it has none.
func (db *DB) DestinationBackoff(ctx context.Context, destination string) (failures int, retryAtTS int64, err error) {
	err = db.read.QueryRowContext(ctx, `
		SELECT failures, retry_at_ts FROM federation_destinations WHERE destination = $1`,
		destination).Scan(&failures, &retryAtTS)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("backoff of %s: %w", destination, err)
	}
	return failures, retryAtTS, nil
}

// SetDestinationBackoff records the destination's backoff; failures 0
// clears it.
func (db *DB) SetDestinationBackoff(ctx context.Context, destination string, failures int, retryAtTS int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		var err error
		if failures == 0 {
			_, err = tx.tx.ExecContext(ctx, `DELETE FROM federation_destinations WHERE destination = $1`, destination)
		} else {
			_, err = tx.tx.ExecContext(ctx, `
				INSERT INTO federation_destinations (destination, failures, retry_at_ts) VALUES ($1, $2, $3)
				ON CONFLICT (destination) DO UPDATE SET failures = excluded.failures, retry_at_ts = excluded.retry_at_ts`,
				destination, failures, retryAtTS)
		}
		if err != nil {
			return fmt.Errorf("set the backoff of %s: %w", destination, err)
		}
		return nil
	})
}

// BackedOffDestinations returns every destination with a backoff
// recorded.
func (db *DB) BackedOffDestinations(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT destination FROM federation_destinations ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("backed-off destinations: %w", err)
	}
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("backed-off destinations: %w", err)
	}
	return out, nil
}
