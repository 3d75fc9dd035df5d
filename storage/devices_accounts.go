package storage

// Account changes that go with devices and tokens: a new password, and
// deactivation, both of which end sessions (client-server-api "Account
// registration and management").

import (
	"context"
	"fmt"
)

// SetPasswordHash replaces the bcrypt hash of localpart's password. It
// returns an error wrapping ErrNotFound if the account does not exist.
func (tx *Tx) SetPasswordHash(ctx context.Context, localpart, hash string) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2 WHERE localpart = $1`, localpart, hash)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", localpart, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set password of %q: %w", localpart, err)
	} else if n == 0 {
		return fmt.Errorf("account %q: %w", localpart, ErrNotFound)
	}
	return nil
}

// DeactivateAccount marks localpart deactivated, clears its password (so
// nothing can log in as it again, as in Synapse), and deletes its devices
// and tokens; with erase, also its profile (the spec's "erase" flag). The
// user ID is never reused: the accounts row stays.
func (tx *Tx) DeactivateAccount(ctx context.Context, localpart string, erase bool) error {
	tx.tokensRevoked(localpart)
	if _, err := tx.DeleteAllDevices(ctx, localpart); err != nil {
		return err
	}
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE accounts SET deactivated = TRUE, password_hash = '' WHERE localpart = $1`, localpart)
	if err != nil {
		return fmt.Errorf("deactivate %q: %w", localpart, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deactivate %q: %w", localpart, err)
	} else if n == 0 {
		return fmt.Errorf("account %q: %w", localpart, ErrNotFound)
	}
	if !erase {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM profile_fields WHERE localpart = $1`, localpart); err != nil {
		return fmt.Errorf("deactivate %q: clear the profile: %w", localpart, err)
	}
	return nil
}
