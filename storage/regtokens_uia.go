package storage

// Queries on uia_sessions (migrations/0002_devices.sql): the sessions of
// client-server-api "User-Interactive Authentication API". They live here,
// next to registration tokens, because a session that passed the
// m.login.registration_token stage holds one pending use of its token until
// it completes or expires.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// UIASession is a user-interactive auth session.
type UIASession struct {
	ID        string
	Operation string
	CreatedTS int64
	// Completed lists the stage types completed so far, in order.
	Completed []string
	// RegistrationToken is the token this session's registration_token
	// stage counted a pending use on, or "".
	RegistrationToken string
}

// CreateUIASession stores a new session with no stage completed.
func (tx *Tx) CreateUIASession(ctx context.Context, id, operation string) error {
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO uia_sessions (session_id, operation, created_ts, completed, registration_token)
		VALUES ($1, $2, $3, '[]', '')`, id, operation, nowMS())
	if err != nil {
		return fmt.Errorf("create auth session: %w", err)
	}
	return nil
}

// GetUIASession returns a session, or an error wrapping ErrNotFound.
func (tx *Tx) GetUIASession(ctx context.Context, id string) (*UIASession, error) {
	s := UIASession{ID: id}
	var completed string
	err := tx.q.QueryRowContext(ctx, `
		SELECT operation, created_ts, completed, registration_token FROM uia_sessions WHERE session_id = $1`, id).
		Scan(&s.Operation, &s.CreatedTS, &completed, &s.RegistrationToken)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("auth session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get auth session: %w", err)
	}
	if err := json.Unmarshal([]byte(completed), &s.Completed); err != nil {
		return nil, fmt.Errorf("auth session %q: stored stages: %w", id, err)
	}
	return &s, nil
}

// UpdateUIASession stores the session's completed stages and registration
// token.
func (tx *Tx) UpdateUIASession(ctx context.Context, s *UIASession) error {
	completed, err := json.Marshal(s.Completed)
	if err != nil {
		return err
	}
	if s.Completed == nil {
		completed = []byte("[]")
	}
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE uia_sessions SET completed = $2, registration_token = $3 WHERE session_id = $1`,
		s.ID, string(completed), s.RegistrationToken)
	return checkOneRow(res, err, "update auth session")
}

// DeleteUIASession deletes a session. Unless its registration token use
// was consumed by a completed registration (tokenUsed), the token's pending
// use is given back.
func (tx *Tx) DeleteUIASession(ctx context.Context, id string, tokenUsed bool) error {
	var token string
	err := tx.q.QueryRowContext(ctx, `DELETE FROM uia_sessions WHERE session_id = $1 RETURNING registration_token`, id).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete auth session: %w", err)
	}
	if token != "" && !tokenUsed {
		return tx.AddRegistrationTokenPending(ctx, token, -1)
	}
	return nil
}

// ExpireUIASessions deletes the sessions created before beforeTS (ms since
// the epoch), giving back their pending registration token uses. It
// deletes at most limit sessions per call, so a backlog never makes one
// request slow.
func (tx *Tx) ExpireUIASessions(ctx context.Context, beforeTS int64, limit int) error {
	rows, err := tx.q.QueryContext(ctx, `
		SELECT session_id FROM uia_sessions WHERE created_ts < $1 ORDER BY created_ts LIMIT $2`, beforeTS, limit)
	if err != nil {
		return fmt.Errorf("expire auth sessions: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("expire auth sessions: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire auth sessions: %w", err)
	}
	for _, id := range ids {
		if err := tx.DeleteUIASession(ctx, id, false); err != nil {
			return err
		}
	}
	return nil
}
