package storage

// Queries on the accounts table (migrations/0001_accounts.sql).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned (wrapped) by lookups that find no row.
var ErrNotFound = errors.New("not found")

// ErrAccountExists is returned (wrapped) by CreateAccount when the localpart
// is taken.
var ErrAccountExists = errors.New("account already exists")

// Account is a local user account.
type Account struct {
	Localpart string
	// PasswordHash is the bcrypt hash of the password, or "" when the
	// account cannot log in with a password.
	PasswordHash string
	IsAdmin      bool
	CreatedTS    int64 // milliseconds since the Unix epoch
	Deactivated  bool
}

// CreateAccount creates the account localpart, in a transaction of its own.
// It returns an error wrapping ErrAccountExists if the localpart is taken.
// The caller has validated the localpart against the user ID grammar.
func (db *DB) CreateAccount(ctx context.Context, localpart, passwordHash string, admin bool) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		return tx.CreateAccount(ctx, localpart, passwordHash, admin)
	})
}

// CreateAccount is DB.CreateAccount within tx.
func (tx *Tx) CreateAccount(ctx context.Context, localpart, passwordHash string, admin bool) error {
	if localpart == "" {
		return errors.New("create account: empty localpart")
	}
	// ON CONFLICT DO NOTHING rather than catching the unique violation:
	// the same text on both databases, and on PostgreSQL it leaves the
	// transaction usable.
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO accounts (localpart, password_hash, is_admin, created_ts, deactivated)
		VALUES ($1, $2, $3, $4, FALSE)
		ON CONFLICT (localpart) DO NOTHING`,
		localpart, passwordHash, admin, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("create account %q: %w", localpart, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create account %q: %w", localpart, err)
	}
	if n == 0 {
		return fmt.Errorf("create account %q: %w", localpart, ErrAccountExists)
	}
	return nil
}

// GetAccount returns the account localpart, or an error wrapping
// ErrNotFound.
func (db *DB) GetAccount(ctx context.Context, localpart string) (*Account, error) {
	return getAccount(ctx, db.read, localpart)
}

// GetAccount is DB.GetAccount within tx; it sees tx's own writes.
func (tx *Tx) GetAccount(ctx context.Context, localpart string) (*Account, error) {
	return getAccount(ctx, tx.q, localpart)
}

func getAccount(ctx context.Context, q queryer, localpart string) (*Account, error) {
	a := Account{Localpart: localpart}
	err := q.QueryRowContext(ctx, `
		SELECT password_hash, is_admin, created_ts, deactivated
		FROM accounts WHERE localpart = $1`, localpart).
		Scan(&a.PasswordHash, &a.IsAdmin, &a.CreatedTS, &a.Deactivated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %q: %w", localpart, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get account %q: %w", localpart, err)
	}
	return &a, nil
}
