package storage

// Queries on profile_fields (migrations/0002_devices.sql): displayname,
// avatar_url and the extended profile fields of client-server-api
// "Profiles", each stored as its JSON value.

import (
	"context"
	"encoding/json"
	"fmt"
)

// SetProfileField sets one field of localpart's profile to value, which
// must be valid JSON.
func (tx *Tx) SetProfileField(ctx context.Context, localpart, field string, value json.RawMessage) error {
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO profile_fields (localpart, field, value) VALUES ($1, $2, $3)
		ON CONFLICT (localpart, field) DO UPDATE SET value = excluded.value`,
		localpart, field, string(value))
	if err != nil {
		return fmt.Errorf("set profile field %q of %q: %w", field, localpart, err)
	}
	return nil
}

// DeleteProfileField removes one field of localpart's profile; a missing
// field is no error.
func (tx *Tx) DeleteProfileField(ctx context.Context, localpart, field string) error {
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM profile_fields WHERE localpart = $1 AND field = $2`, localpart, field); err != nil {
		return fmt.Errorf("delete profile field %q of %q: %w", field, localpart, err)
	}
	return nil
}

// Profile returns every field of localpart's profile (empty when none).
func (db *DB) Profile(ctx context.Context, localpart string) (map[string]json.RawMessage, error) {
	return profile(ctx, db.read, localpart)
}

// Profile is DB.Profile within tx.
func (tx *Tx) Profile(ctx context.Context, localpart string) (map[string]json.RawMessage, error) {
	return profile(ctx, tx.q, localpart)
}

func profile(ctx context.Context, q queryer, localpart string) (map[string]json.RawMessage, error) {
	rows, err := q.QueryContext(ctx, `SELECT field, value FROM profile_fields WHERE localpart = $1`, localpart)
	if err != nil {
		return nil, fmt.Errorf("profile of %q: %w", localpart, err)
	}
	defer rows.Close()
	p := map[string]json.RawMessage{}
	for rows.Next() {
		var field, value string
		if err := rows.Scan(&field, &value); err != nil {
			return nil, fmt.Errorf("profile of %q: %w", localpart, err)
		}
		p[field] = json.RawMessage(value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("profile of %q: %w", localpart, err)
	}
	return p, nil
}
