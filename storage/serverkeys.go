package storage

// Queries on server_keys and server_key_responses
// (migrations/0008_server_keys.sql): other servers' signing keys, kept by
// federation/serverkeys.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ServerKey is one signing key of another server, as learnt from its key
// responses.
type ServerKey struct {
	ServerName string
	KeyID      string // "ed25519:<version>"
	PublicKey  []byte
	// ValidUntilTS is how long the key is valid while current: the
	// response's valid_until_ts, capped by the caller (at 7 days after the
	// fetch, the spec's rule). For an old key, give its expired_ts.
	ValidUntilTS int64
	// ExpiredTS is when the key stopped signing (old_verify_keys); 0 while
	// it is current.
	ExpiredTS int64
	FetchedTS int64
}

// ServerKeyResponse is a server's signed key response.
type ServerKeyResponse struct {
	ServerName   string
	JSON         []byte // as the server signed it
	ValidUntilTS int64  // the response's valid_until_ts, uncapped
	FetchedTS    int64
}

// StoreServerKeys records, in one transaction, what one key response of a
// server said: its keys and the response itself. Stored keys are merged,
// never forgotten: a key's validity only grows (an older response, from a
// notary, cannot shorten it), and once a key is known to have expired it
// stays expired, at the earliest expired_ts heard. A key ID whose public
// key changed is replaced outright. The response replaces the kept one if
// direct (it was fetched from the server itself, so it is the server's
// latest word) or if it is valid for longer.
func (db *DB) StoreServerKeys(ctx context.Context, resp ServerKeyResponse, direct bool, keys []ServerKey) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		for _, k := range keys {
			if k.ServerName != resp.ServerName {
				return fmt.Errorf("store server keys: key %s of %s in a response of %s", k.KeyID, k.ServerName, resp.ServerName)
			}
			var expired sql.NullInt64
			if k.ExpiredTS != 0 {
				expired = sql.NullInt64{Int64: k.ExpiredTS, Valid: true}
			}
			// In SET, server_keys.<column> is the stored value and
			// excluded.<column> the new one.
			_, err := tx.tx.ExecContext(ctx, `
				INSERT INTO server_keys (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (server_name, key_id) DO UPDATE SET
					valid_until_ts = CASE
						WHEN server_keys.public_key <> excluded.public_key THEN excluded.valid_until_ts
						WHEN excluded.valid_until_ts > server_keys.valid_until_ts THEN excluded.valid_until_ts
						ELSE server_keys.valid_until_ts END,
					expired_ts = CASE
						WHEN server_keys.public_key <> excluded.public_key THEN excluded.expired_ts
						WHEN server_keys.expired_ts IS NULL THEN excluded.expired_ts
						WHEN excluded.expired_ts < server_keys.expired_ts THEN excluded.expired_ts
						ELSE server_keys.expired_ts END,
					fetched_ts = CASE
						WHEN excluded.fetched_ts > server_keys.fetched_ts THEN excluded.fetched_ts
						ELSE server_keys.fetched_ts END,
					public_key = excluded.public_key`,
				k.ServerName, k.KeyID, k.PublicKey, k.ValidUntilTS, expired, k.FetchedTS)
			if err != nil {
				return fmt.Errorf("store key %s of %s: %w", k.KeyID, k.ServerName, err)
			}
		}
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO server_key_responses (server_name, response_json, valid_until_ts, fetched_ts)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (server_name) DO UPDATE SET
				response_json = excluded.response_json,
				valid_until_ts = excluded.valid_until_ts,
				fetched_ts = excluded.fetched_ts
			WHERE $5 OR excluded.valid_until_ts > server_key_responses.valid_until_ts`,
			resp.ServerName, string(resp.JSON), resp.ValidUntilTS, resp.FetchedTS, direct)
		if err != nil {
			return fmt.Errorf("store the key response of %s: %w", resp.ServerName, err)
		}
		return nil
	})
}

// ServerKeys returns every stored key of serverName, ordered by key ID.
func (db *DB) ServerKeys(ctx context.Context, serverName string) ([]ServerKey, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT key_id, public_key, valid_until_ts, expired_ts, fetched_ts
		FROM server_keys WHERE server_name = $1 ORDER BY key_id`, serverName)
	if err != nil {
		return nil, fmt.Errorf("keys of %s: %w", serverName, err)
	}
	defer rows.Close()
	var keys []ServerKey
	for rows.Next() {
		k := ServerKey{ServerName: serverName}
		var expired sql.NullInt64
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &k.ValidUntilTS, &expired, &k.FetchedTS); err != nil {
			return nil, fmt.Errorf("keys of %s: %w", serverName, err)
		}
		k.ExpiredTS = expired.Int64
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keys of %s: %w", serverName, err)
	}
	return keys, nil
}

// ServerKeyResponse returns the kept key response of serverName, or an
// error wrapping ErrNotFound.
func (db *DB) ServerKeyResponse(ctx context.Context, serverName string) (*ServerKeyResponse, error) {
	r := ServerKeyResponse{ServerName: serverName}
	var js string
	err := db.read.QueryRowContext(ctx, `
		SELECT response_json, valid_until_ts, fetched_ts FROM server_key_responses WHERE server_name = $1`,
		serverName).Scan(&js, &r.ValidUntilTS, &r.FetchedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key response of %s: %w", serverName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("key response of %s: %w", serverName, err)
	}
	r.JSON = []byte(js)
	return &r, nil
}
