package auth

// Issuing credentials: device IDs, access tokens and refresh tokens, and
// the login sessions that bundle them (shared by /register, /login and
// /refresh).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Token prefixes say what a token is when one turns up in a bug report or a
// secret scanner, as Synapse's "syt_" does.
const (
	accessPrefix  = "myla_"
	refreshPrefix = "mylr_"
)

// newToken returns prefix and 32 random bytes, URL-safe base64.
func newToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is the stored form of a token: its SHA-256, in hex. Tokens have
// 256 random bits, so a fast hash is enough (no salt or stretching).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewDeviceID returns a random device ID: ten capital letters, as Synapse
// makes them.
func NewDeviceID() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// NewSessionID returns a random ID for user-interactive auth sessions.
func NewSessionID() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Session is what a successful login or registration returns to the client.
type Session struct {
	UserID       string `json:"user_id"`
	AccessToken  string `json:"access_token"`
	DeviceID     string `json:"device_id"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
	// HomeServer is deprecated in the spec but still read by old clients.
	HomeServer string `json:"home_server"`
}

// LoginRequest describes a new login session for a local user.
type LoginRequest struct {
	Localpart string
	// DeviceID reuses (or creates) that device; "" makes a new one.
	DeviceID string
	// DisplayName names the device; nil leaves an existing device's name.
	DisplayName *string
	// Refresh asks for a refresh token and an expiring access token.
	Refresh bool
}

// MaxDeviceIDLength bounds client-chosen device IDs (Synapse allows 512).
const MaxDeviceIDLength = 512

// Login creates or reuses the device and issues its tokens, within tx. A
// device that is reused loses its previous tokens: its old session ends.
func (a *Authenticator) Login(ctx context.Context, tx *storage.Tx, req LoginRequest) (*Session, error) {
	deviceID := req.DeviceID
	if deviceID == "" {
		deviceID = NewDeviceID()
	}
	if len(deviceID) > MaxDeviceIDLength {
		return nil, httputil.InvalidParam(fmt.Sprintf("device_id is longer than %d bytes", MaxDeviceIDLength))
	}
	created, err := tx.UpsertDevice(ctx, req.Localpart, deviceID, req.DisplayName)
	if err != nil {
		return nil, err
	}
	if !created {
		if err := tx.DeleteDeviceTokens(ctx, req.Localpart, deviceID); err != nil {
			return nil, err
		}
	}
	return a.issue(ctx, tx, req.Localpart, deviceID, req.Refresh, 0)
}

// issue stores a new access token (and a refresh token when refresh) for an
// existing device; supersedes is the refresh token that a /refresh spends.
func (a *Authenticator) issue(ctx context.Context, tx *storage.Tx, localpart, deviceID string, refresh bool, supersedes int64) (*Session, error) {
	s := &Session{
		UserID:      a.UserID(localpart),
		AccessToken: newToken(accessPrefix),
		DeviceID:    deviceID,
		HomeServer:  a.serverName,
	}
	at := storage.AccessToken{
		Hash: HashToken(s.AccessToken), Localpart: localpart, DeviceID: deviceID,
		SupersedesRefreshID: supersedes,
	}
	if refresh {
		s.RefreshToken = newToken(refreshPrefix)
		id, err := tx.AddRefreshToken(ctx, HashToken(s.RefreshToken), localpart, deviceID, supersedes)
		if err != nil {
			return nil, err
		}
		at.RefreshID = id
		s.ExpiresInMS = a.lifetime.Milliseconds()
		at.ExpiresTS = time.Now().Add(a.lifetime).UnixMilli()
	}
	if err := tx.AddAccessToken(ctx, at); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh spends a refresh token and returns a new access token and a new
// refresh token (client-server-api "Refreshing access tokens"). The old
// refresh token keeps working until the new access or refresh token is
// first used, so a client that lost the answer can retry. An unknown or
// spent token is 401 M_UNKNOWN_TOKEN with soft_logout false: the client
// must log in again.
func (a *Authenticator) Refresh(ctx context.Context, refreshToken string) (*Session, error) {
	var s *Session
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		rt, err := tx.LookupRefreshToken(ctx, HashToken(refreshToken))
		if errors.Is(err, storage.ErrNotFound) {
			return httputil.UnknownToken("unknown or already used refresh token", false)
		}
		if err != nil {
			return err
		}
		if rt.SupersedesRefreshID != 0 {
			// Using this refresh token also spends the one before it.
			if err := tx.ClearSuperseded(ctx, rt.SupersedesRefreshID); err != nil {
				return err
			}
		}
		s, err = a.issue(ctx, tx, rt.Localpart, rt.DeviceID, true, rt.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
