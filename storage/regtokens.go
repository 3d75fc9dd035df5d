package storage

// Queries on registration_tokens (migrations/0002_devices.sql):
// client-server-api "Token-authenticated registration", administered with
// the shape of Synapse's /_synapse/admin/v1/registration_tokens.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrTokenExists is returned (wrapped) by CreateRegistrationToken when the
// token is taken.
var ErrTokenExists = errors.New("registration token already exists")

// RegistrationToken is a token that lets someone register.
type RegistrationToken struct {
	Token       string
	UsesAllowed *int64 // nil = unlimited
	Pending     int64  // sessions that passed the token stage and are still registering
	Completed   int64  // registrations completed with it
	ExpiryTime  *int64 // ms since the epoch; nil = never
}

// Valid reports whether the token may start another registration at now
// (ms since the epoch): not expired, and uses left counting the pending
// ones, as Synapse counts them.
func (t *RegistrationToken) Valid(now int64) bool {
	if t.ExpiryTime != nil && *t.ExpiryTime <= now {
		return false
	}
	return t.UsesAllowed == nil || t.Pending+t.Completed < *t.UsesAllowed
}

const regTokenColumns = `token, uses_allowed, pending, completed, expiry_time`

func scanRegToken(row interface{ Scan(...any) error }) (*RegistrationToken, error) {
	var t RegistrationToken
	var uses, expiry sql.NullInt64
	if err := row.Scan(&t.Token, &uses, &t.Pending, &t.Completed, &expiry); err != nil {
		return nil, err
	}
	if uses.Valid {
		t.UsesAllowed = &uses.Int64
	}
	if expiry.Valid {
		t.ExpiryTime = &expiry.Int64
	}
	return &t, nil
}

// CreateRegistrationToken stores a new token with no uses yet. It returns
// an error wrapping ErrTokenExists if the token is taken.
func (tx *Tx) CreateRegistrationToken(ctx context.Context, t RegistrationToken) error {
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time)
		VALUES ($1, $2, 0, 0, $3) ON CONFLICT (token) DO NOTHING`,
		t.Token, t.UsesAllowed, t.ExpiryTime)
	if err != nil {
		return fmt.Errorf("create registration token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create registration token: %w", err)
	} else if n == 0 {
		return fmt.Errorf("create registration token %q: %w", t.Token, ErrTokenExists)
	}
	return nil
}

// GetRegistrationToken returns a token, or an error wrapping ErrNotFound.
func (db *DB) GetRegistrationToken(ctx context.Context, token string) (*RegistrationToken, error) {
	return getRegToken(ctx, db.read, token)
}

// GetRegistrationToken is DB.GetRegistrationToken within tx.
func (tx *Tx) GetRegistrationToken(ctx context.Context, token string) (*RegistrationToken, error) {
	return getRegToken(ctx, tx.q, token)
}

func getRegToken(ctx context.Context, q queryer, token string) (*RegistrationToken, error) {
	t, err := scanRegToken(q.QueryRowContext(ctx, `SELECT `+regTokenColumns+` FROM registration_tokens WHERE token = $1`, token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registration token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get registration token: %w", err)
	}
	return t, nil
}

// ListRegistrationTokens returns every token, ordered by token.
func (db *DB) ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+regTokenColumns+` FROM registration_tokens ORDER BY token`)
	if err != nil {
		return nil, fmt.Errorf("list registration tokens: %w", err)
	}
	defer rows.Close()
	var ts []RegistrationToken
	for rows.Next() {
		t, err := scanRegToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list registration tokens: %w", err)
		}
		ts = append(ts, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list registration tokens: %w", err)
	}
	return ts, nil
}

// UpdateRegistrationToken sets a token's uses_allowed and expiry_time (nil
// = unlimited, never). It returns an error wrapping ErrNotFound if the
// token does not exist.
func (tx *Tx) UpdateRegistrationToken(ctx context.Context, token string, usesAllowed, expiryTime *int64) error {
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE registration_tokens SET uses_allowed = $2, expiry_time = $3 WHERE token = $1`,
		token, usesAllowed, expiryTime)
	return checkOneRow(res, err, "update registration token")
}

// DeleteRegistrationToken deletes a token. It returns an error wrapping
// ErrNotFound if the token does not exist.
func (tx *Tx) DeleteRegistrationToken(ctx context.Context, token string) error {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM registration_tokens WHERE token = $1`, token)
	return checkOneRow(res, err, "delete registration token")
}

// AddRegistrationTokenPending adds delta (1 or -1) to a token's pending
// count; a token deleted meanwhile is no error.
func (tx *Tx) AddRegistrationTokenPending(ctx context.Context, token string, delta int64) error {
	_, err := tx.tx.ExecContext(ctx, `
		UPDATE registration_tokens SET pending = pending + $2 WHERE token = $1 AND pending + $2 >= 0`,
		token, delta)
	if err != nil {
		return fmt.Errorf("count a pending registration: %w", err)
	}
	return nil
}

// CompleteRegistrationToken moves one use of a token from pending to
// completed, once the registration it authorised is done.
func (tx *Tx) CompleteRegistrationToken(ctx context.Context, token string) error {
	_, err := tx.tx.ExecContext(ctx, `
		UPDATE registration_tokens
		SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, completed = completed + 1
		WHERE token = $1`, token)
	if err != nil {
		return fmt.Errorf("count a completed registration: %w", err)
	}
	return nil
}

func checkOneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// nowMS is the current time in milliseconds since the epoch.
func nowMS() int64 { return time.Now().UnixMilli() }

// HasRegistrationTokens reports whether any registration token exists.
func (db *DB) HasRegistrationTokens(ctx context.Context) (bool, error) {
	var n int64
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM registration_tokens LIMIT 1) t`).Scan(&n); err != nil {
		return false, fmt.Errorf("count registration tokens: %w", err)
	}
	return n > 0, nil
}
