// Package auth authenticates Client-Server API requests and issues the
// credentials they carry (client-server-api "Client Authentication"): access
// tokens from the Authorization header or the access_token query parameter,
// refresh tokens ("Refreshing access tokens"), password hashes, and the
// User-Interactive Authentication API (uia.go).
//
// Tokens are random (crypto/rand) and only their SHA-256 is stored, so the
// database alone does not let anyone in; tokens are never logged.
package auth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// Device is the authenticated requester: a user and the device (login
// session) its access token belongs to.
type Device struct {
	UserID   string
	DeviceID string
	IsAdmin  bool
}

// Localpart is the user ID's localpart (the user is always local).
func (d *Device) Localpart() string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(d.UserID, "@"), ":")
	return lp
}

// DefaultAccessTokenLifetime is how long an access token issued with a
// refresh token lives, Synapse's default (refreshable_access_token_lifetime).
const DefaultAccessTokenLifetime = 5 * time.Minute

// seenInterval bounds how often a device's last_seen is written: a write
// per request would make every request a database write.
const seenInterval = 5 * time.Minute

// Authenticator checks access tokens and issues new ones.
type Authenticator struct {
	db         *storage.DB
	serverName string
	lifetime   time.Duration
	// xForwardedFor: see WithXForwardedFor.
	xForwardedFor bool

	mu   sync.Mutex
	seen map[string]time.Time // localpart + "\x00" + device ID → last write

	// tokens keeps the owners of checked access tokens (tokencache.go).
	tokens *tokenCache
	busMu  sync.Mutex
	bus    *bus.Bus // set by ShareRevocations
}

// Option adjusts New.
type Option func(*Authenticator)

// WithAccessTokenLifetime sets the lifetime of access tokens issued with a
// refresh token (DefaultAccessTokenLifetime otherwise).
func WithAccessTokenLifetime(d time.Duration) Option {
	return func(a *Authenticator) {
		if d > 0 {
			a.lifetime = d
		}
	}
}

// New returns an Authenticator for the users of serverName stored in db.
func New(db *storage.DB, serverName string, opts ...Option) *Authenticator {
	a := &Authenticator{db: db, serverName: serverName, lifetime: DefaultAccessTokenLifetime, seen: map[string]time.Time{},
		tokens: newTokenCache()}
	for _, o := range opts {
		o(a)
	}
	if db != nil {
		db.OnAccessTokensRevoked(a.revoked)
	}
	return a
}

// ServerName is the server whose users this authenticates.
func (a *Authenticator) ServerName() string { return a.serverName }

// UserID returns the full user ID of a local localpart.
func (a *Authenticator) UserID(localpart string) string {
	return "@" + localpart + ":" + a.serverName
}

// Required wraps a handler that needs an authenticated user: without a
// valid access token the request is answered 401 M_MISSING_TOKEN or
// M_UNKNOWN_TOKEN, and h does not run.
func (a *Authenticator) Required(h func(w http.ResponseWriter, r *http.Request, d *Device)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := a.Authenticate(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		h(w, r, d)
	}
}

// Optional wraps a handler that serves anonymous requests too: h gets a nil
// Device when the request has no access token. A token that is present but
// invalid is still refused, as the spec asks (a client must learn that it
// was logged out).
func (a *Authenticator) Optional(h func(w http.ResponseWriter, r *http.Request, d *Device)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !hasToken(r) {
			h(w, r, nil)
			return
		}
		d, err := a.Authenticate(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		h(w, r, d)
	}
}

// hasToken reports whether r carries an access token, valid or not.
func hasToken(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Query().Has("access_token")
}

// TokenFromRequest returns the access token of r, from the Authorization
// header ("Bearer TOKEN") or the deprecated access_token query parameter.
// Its errors are 401 M_MISSING_TOKEN.
func TokenFromRequest(r *http.Request) (string, error) {
	headers := r.Header.Values("Authorization")
	query, inQuery := r.URL.Query()["access_token"]
	switch {
	case len(headers) > 1:
		return "", httputil.MissingToken("more than one Authorization header")
	case len(headers) == 1 && inQuery:
		// As Synapse: two tokens could disagree, so neither is trusted.
		return "", httputil.MissingToken("the access token is in both the Authorization header and the query string")
	case len(headers) == 1:
		scheme, token, ok := strings.Cut(headers[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", httputil.MissingToken(`the Authorization header must be "Bearer <access token>"`)
		}
		return strings.TrimSpace(token), nil
	case inQuery:
		if len(query) != 1 || query[0] == "" {
			return "", httputil.MissingToken("the access_token query parameter must appear once, with a value")
		}
		return query[0], nil
	}
	return "", httputil.MissingToken("missing access token")
}

// Authenticate returns the requester of r, or a 401 (or a database error).
func (a *Authenticator) Authenticate(r *http.Request) (*Device, error) {
	token, err := TokenFromRequest(r)
	if err != nil {
		return nil, err
	}
	return a.authenticateToken(r.Context(), token, a.ClientIP(r))
}

func (a *Authenticator) authenticateToken(ctx context.Context, token, ip string) (*Device, error) {
	hash := HashToken(token)
	now := time.Now()
	owner, cached := a.tokens.get(hash, now)
	if !cached {
		gen := a.tokens.generation()
		read, err := a.db.LookupAccessToken(ctx, hash)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, httputil.UnknownToken("unknown access token", false)
		}
		if err != nil {
			return nil, err
		}
		owner = *read
		a.tokens.put(hash, owner, gen, now)
	}
	if owner.Deactivated {
		return nil, httputil.UnknownToken("the account has been deactivated", false)
	}
	if owner.ExpiresTS != 0 && now.UnixMilli() >= owner.ExpiresTS {
		// Soft logout: the client refreshes (or logs in again) and keeps
		// its device and keys.
		return nil, httputil.UnknownToken("the access token has expired", true)
	}
	if owner.SupersedesRefreshID != 0 {
		// First use of a token issued by /refresh: the refresh token it
		// replaced is now spent.
		if err := a.db.ClearSuperseded(ctx, owner.SupersedesRefreshID); err != nil {
			return nil, err
		}
	}
	a.noteSeen(owner.Localpart, owner.DeviceID, ip, now)
	return &Device{UserID: a.UserID(owner.Localpart), DeviceID: owner.DeviceID, IsAdmin: owner.IsAdmin}, nil
}

// noteSeen records the device's last use in the background, at most every
// seenInterval per device in this process.
func (a *Authenticator) noteSeen(localpart, deviceID, ip string, now time.Time) {
	key := localpart + "\x00" + deviceID
	a.mu.Lock()
	last, ok := a.seen[key]
	if ok && now.Sub(last) < seenInterval {
		a.mu.Unlock()
		return
	}
	a.seen[key] = now
	if len(a.seen) > 100_000 {
		// Bound the map: forget entries old enough to be written again anyway.
		for k, t := range a.seen {
			if now.Sub(t) >= seenInterval {
				delete(a.seen, k)
			}
		}
	}
	a.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Losing a last-seen update is harmless; it is written again later.
		_ = a.db.UpdateDeviceSeen(ctx, localpart, deviceID, now.UnixMilli(), ip)
	}()
}

// ClientIP is the address r came from, without the port: the key of rate
// limits and the devices' last_seen_ip. With WithXForwardedFor it is the
// last address of the X-Forwarded-For header, the one the reverse proxy in
// front of the server saw (earlier entries come from the client and can be
// forged); otherwise the connection's peer.
func (a *Authenticator) ClientIP(r *http.Request) string {
	if a.xForwardedFor {
		if h := r.Header.Values("X-Forwarded-For"); len(h) > 0 {
			last := h[len(h)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// WithXForwardedFor makes ClientIP trust the X-Forwarded-For header, for a
// server behind a reverse proxy that sets it.
func WithXForwardedFor(trust bool) Option {
	return func(a *Authenticator) { a.xForwardedFor = trust }
}
