package auth

// OpenID tokens (client-server-api "OpenID", server-server-api "OpenID"):
// issued to a user by the client API, checked for a third party by the
// federation API's /openid/userinfo. Both sides are here so that the
// token's form, hashing and lifetime are decided in one place.

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// OpenIDTokenLifetime is how long an OpenID token is accepted: an hour, as
// in Synapse. The third party exchanges it at once.
const OpenIDTokenLifetime = time.Hour

// openIDPrefix marks OpenID tokens, as accessPrefix marks access tokens.
const openIDPrefix = "myloi_"

// IssueOpenIDToken makes and stores an OpenID token for userID, valid for
// OpenIDTokenLifetime from now. It is not an access token: the
// Authenticator does not know it.
func IssueOpenIDToken(ctx context.Context, db *storage.DB, userID string, now time.Time) (string, error) {
	token := newToken(openIDPrefix)
	if err := db.CreateOpenIDToken(ctx, HashToken(token), userID, now.Add(OpenIDTokenLifetime).UnixMilli(), now.UnixMilli()); err != nil {
		return "", err
	}
	return token, nil
}

// OpenIDTokenUser returns the user who was issued token, or 401
// M_UNKNOWN_TOKEN when it is unknown or expired at now.
func OpenIDTokenUser(ctx context.Context, db *storage.DB, token string, now time.Time) (string, error) {
	userID, err := db.OpenIDTokenUser(ctx, HashToken(token), now.UnixMilli())
	if errors.Is(err, storage.ErrNotFound) {
		// Without UnknownToken's soft_logout: this is no client's session.
		return "", httputil.NewError(http.StatusUnauthorized, httputil.CodeUnknownToken, "access token unknown or expired")
	}
	return userID, err
}
