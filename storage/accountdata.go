package storage

// Queries on account_data (migrations/0005_sync.sql): per-user data, global
// (room "") or per room, streamed to the user's own /sync.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AccountData is one account data entry.
type AccountData struct {
	RoomID    string // "" for global account data
	Type      string
	Content   []byte // a JSON object
	StreamPos int64  // position of its last change
}

// SetAccountData stores content (a JSON object the caller has checked) as
// userID's account data of type dataType in roomID ("" for global), at a new
// stream position, which it returns.
func (tx *Tx) SetAccountData(ctx context.Context, userID, roomID, dataType string, content []byte) (int64, error) {
	pos, err := tx.NextStreamPos(ctx)
	if err != nil {
		return 0, err
	}
	_, err = tx.tx.ExecContext(ctx, `
		INSERT INTO account_data (user_id, room_id, data_type, content, stream_pos)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, room_id, data_type)
		DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
		userID, roomID, dataType, string(content), pos)
	if err != nil {
		return 0, fmt.Errorf("set account data %q of %q in %q: %w", dataType, userID, roomID, err)
	}
	tx.accountData = appendOnce(tx.accountData, AccountDataChange{UserID: userID, RoomID: roomID, Type: dataType})
	return pos, nil
}

// GetAccountData returns the content of userID's account data of type
// dataType in roomID ("" for global), or an error wrapping ErrNotFound.
func (db *DB) GetAccountData(ctx context.Context, userID, roomID, dataType string) ([]byte, error) {
	return getAccountData(ctx, db.read, userID, roomID, dataType)
}

// GetAccountData is DB.GetAccountData within tx.
func (tx *Tx) GetAccountData(ctx context.Context, userID, roomID, dataType string) ([]byte, error) {
	return getAccountData(ctx, tx.q, userID, roomID, dataType)
}

func getAccountData(ctx context.Context, q queryer, userID, roomID, dataType string) ([]byte, error) {
	var content string
	err := q.QueryRowContext(ctx, `
		SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND data_type = $3`,
		userID, roomID, dataType).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account data %q of %q in %q: %w", dataType, userID, roomID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get account data %q of %q in %q: %w", dataType, userID, roomID, err)
	}
	return []byte(content), nil
}

// AccountDataSince returns userID's account data (global and every room's)
// changed at stream positions in (since, upto], oldest change first. since
// 0 returns all of it.
func (db *DB) AccountDataSince(ctx context.Context, userID string, since, upto int64) ([]AccountData, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT room_id, data_type, content, stream_pos FROM account_data
		WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3
		ORDER BY stream_pos`, userID, since, upto)
	if err != nil {
		return nil, fmt.Errorf("account data of %q since %d: %w", userID, since, err)
	}
	defer rows.Close()
	var out []AccountData
	for rows.Next() {
		var (
			a       AccountData
			content string
		)
		if err := rows.Scan(&a.RoomID, &a.Type, &content, &a.StreamPos); err != nil {
			return nil, fmt.Errorf("account data of %q since %d: %w", userID, since, err)
		}
		a.Content = []byte(content)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("account data of %q since %d: %w", userID, since, err)
	}
	return out, nil
}
