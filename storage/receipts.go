package storage

// Queries on receipts (migrations/0005_sync.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Receipt is a user's receipt in a room: the latest event of its (room,
// type, user, thread) tuple.
type Receipt struct {
	RoomID   string
	Type     string // m.read or m.read.private
	UserID   string
	ThreadID string // "" for an unthreaded receipt
	EventID  string
	// EventPos is the stream position of the receipted event; a receipt for
	// an earlier event than the stored one does not replace it.
	EventPos  int64
	TS        int64 // milliseconds since the Unix epoch
	StreamPos int64 // set by PutReceipt
}

// PutReceipt stores r unless the stored receipt of the same tuple is for a
// later event (receipts mark "read up to", and an old client catching up
// must not move them back). It reports the new stream position, or 0 when
// nothing changed.
func (tx *Tx) PutReceipt(ctx context.Context, r Receipt) (int64, error) {
	var stored int64
	err := tx.q.QueryRowContext(ctx, `
		SELECT event_pos FROM receipts
		WHERE room_id = $1 AND receipt_type = $2 AND user_id = $3 AND thread_id = $4`,
		r.RoomID, r.Type, r.UserID, r.ThreadID).Scan(&stored)
	switch {
	case err == nil && stored >= r.EventPos:
		return 0, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("receipt of %q in %q: %w", r.UserID, r.RoomID, err)
	}
	return tx.writeReceipt(ctx, r)
}

// writeReceipt stores r at a new stream position and returns it.
func (tx *Tx) writeReceipt(ctx context.Context, r Receipt) (int64, error) {
	pos, err := tx.NextStreamPos(ctx)
	if err != nil {
		return 0, err
	}
	_, err = tx.tx.ExecContext(ctx, `
		INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, event_pos, ts, stream_pos)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (room_id, receipt_type, user_id, thread_id)
		DO UPDATE SET event_id = excluded.event_id, event_pos = excluded.event_pos,
			ts = excluded.ts, stream_pos = excluded.stream_pos`,
		r.RoomID, r.Type, r.UserID, r.ThreadID, r.EventID, r.EventPos, r.TS, pos)
	if err != nil {
		return 0, fmt.Errorf("store receipt of %q in %q: %w", r.UserID, r.RoomID, err)
	}
	return pos, nil
}

// ReceiptsSince returns the receipts of roomIDs written at stream positions
// in (since, upto]. since 0 returns every stored receipt of those rooms.
// Private receipts (m.read.private) of other users are the caller's to drop.
func (db *DB) ReceiptsSince(ctx context.Context, roomIDs []string, since, upto int64) ([]Receipt, error) {
	if len(roomIDs) == 0 {
		return nil, nil
	}
	const cols = `room_id, receipt_type, user_id, thread_id, event_id, event_pos, ts, stream_pos`
	var out []Receipt
	if since > 0 {
		// An incremental sync: few receipts are recent, so scan them by
		// position and keep the rooms asked for.
		want := make(map[string]bool, len(roomIDs))
		for _, r := range roomIDs {
			want[r] = true
		}
		err := db.scanReceipts(ctx, &out, want, `SELECT `+cols+` FROM receipts
			WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos`, since, upto)
		return out, err
	}
	for chunk := range chunks(roomIDs, inChunk) {
		args := []any{upto}
		q := `SELECT ` + cols + ` FROM receipts WHERE stream_pos <= $1 AND room_id IN (` + inList(2, len(chunk)) + `)`
		for _, r := range chunk {
			args = append(args, r)
		}
		if err := db.scanReceipts(ctx, &out, nil, q, args...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) scanReceipts(ctx context.Context, out *[]Receipt, rooms map[string]bool, q string, args ...any) error {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Receipt
		if err := rows.Scan(&r.RoomID, &r.Type, &r.UserID, &r.ThreadID, &r.EventID, &r.EventPos, &r.TS, &r.StreamPos); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		if rooms == nil || rooms[r.RoomID] {
			*out = append(*out, r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	return nil
}

// PutRemoteReceipt stores a receipt a remote server sent for one of its
// users. The sending server keeps its users' receipts moving forward (it
// may name an event this server does not hold yet, whose position is then
// unknown), so the receipt replaces the stored one unless it is for the
// same event. It reports the new stream position, or 0 when nothing
// changed.
func (tx *Tx) PutRemoteReceipt(ctx context.Context, r Receipt) (int64, error) {
	var stored string
	err := tx.q.QueryRowContext(ctx, `
		SELECT event_id FROM receipts
		WHERE room_id = $1 AND receipt_type = $2 AND user_id = $3 AND thread_id = $4`,
		r.RoomID, r.Type, r.UserID, r.ThreadID).Scan(&stored)
	switch {
	case err == nil && stored == r.EventID:
		return 0, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("receipt of %q in %q: %w", r.UserID, r.RoomID, err)
	}
	return tx.writeReceipt(ctx, r)
}

// ReceiptsAfter returns up to limit receipts written at stream positions
// after since, in stream order (the federation sender's feed).
func (db *DB) ReceiptsAfter(ctx context.Context, since int64, limit int) ([]Receipt, error) {
	var out []Receipt
	err := db.scanReceipts(ctx, &out, nil, `SELECT room_id, receipt_type, user_id, thread_id, event_id, event_pos, ts, stream_pos
		FROM receipts WHERE stream_pos > $1 ORDER BY stream_pos LIMIT $2`, since, limit)
	return out, err
}
