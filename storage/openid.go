package storage

// Queries on openid_tokens (migrations/0010_openid_tokens.sql). Tokens
// arrive here already hashed, as access tokens do.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CreateOpenIDToken stores an OpenID token (its hash) of userID, refused
// from expiresTS (ms since the epoch). Tokens expired at nowTS are deleted
// at the same time, so the table holds about an hour of tokens.
func (db *DB) CreateOpenIDToken(ctx context.Context, tokenHash, userID string, expiresTS, nowTS int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM openid_tokens WHERE expires_ts <= $1`, nowTS); err != nil {
			return fmt.Errorf("delete expired openid tokens: %w", err)
		}
		if _, err := tx.tx.ExecContext(ctx, `
			INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`,
			tokenHash, userID, expiresTS); err != nil {
			return fmt.Errorf("create openid token for %q: %w", userID, err)
		}
		return nil
	})
}

// OpenIDTokenUser returns the user whose OpenID token has this hash, or an
// error wrapping ErrNotFound when there is no such token or it has expired
// at nowTS.
func (db *DB) OpenIDTokenUser(ctx context.Context, tokenHash string, nowTS int64) (string, error) {
	var userID string
	err := db.read.QueryRowContext(ctx, `
		SELECT user_id FROM openid_tokens WHERE token_hash = $1 AND expires_ts > $2`,
		tokenHash, nowTS).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("openid token: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("openid token: %w", err)
	}
	return userID, nil
}
