package storage

// Queries on sync_filters (migrations/0005_sync.sql).

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// PutFilter stores a user's filter and returns its ID. The same JSON stored
// twice by one user returns the first ID, so clients that upload their filter
// at every start do not grow the table. The caller has validated filterJSON.
func (db *DB) PutFilter(ctx context.Context, userID string, filterJSON []byte) (string, error) {
	sum := sha256.Sum256(filterJSON)
	hash := hex.EncodeToString(sum[:])
	var id int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		// DO UPDATE with an unchanged value rather than DO NOTHING, so that
		// RETURNING yields the existing row's ID too.
		return tx.q.QueryRowContext(ctx, `
			INSERT INTO sync_filters (user_id, filter_hash, filter_json)
			VALUES ($1, $2, $3)
			ON CONFLICT (user_id, filter_hash) DO UPDATE SET filter_hash = excluded.filter_hash
			RETURNING filter_id`, userID, hash, string(filterJSON)).Scan(&id)
	})
	if err != nil {
		return "", fmt.Errorf("store filter of %q: %w", userID, err)
	}
	return strconv.FormatInt(id, 10), nil
}

// GetFilter returns the JSON of the filter filterID of userID, or an error
// wrapping ErrNotFound (also for an ID that belongs to another user or is
// not a number).
func (db *DB) GetFilter(ctx context.Context, userID, filterID string) ([]byte, error) {
	id, err := strconv.ParseInt(filterID, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("filter %q of %q: %w", filterID, userID, ErrNotFound)
	}
	var text string
	err = db.read.QueryRowContext(ctx, `
		SELECT filter_json FROM sync_filters WHERE filter_id = $1 AND user_id = $2`, id, userID).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("filter %q of %q: %w", filterID, userID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get filter %q of %q: %w", filterID, userID, err)
	}
	return []byte(text), nil
}
