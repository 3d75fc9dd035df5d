package clientapi

// Account endpoints shared plumbing: route registration for the accounts
// modules (register.go, login.go, account_*.go, devices.go, profile.go,
// capabilities.go) and small helpers.

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// NewAuthenticator builds the access token authenticator for cfg's server,
// for the client API and the other APIs that authenticate clients (sync).
func NewAuthenticator(db *storage.DB, cfg *config.Config) *auth.Authenticator {
	// Load has validated the lifetime; a bad one in a hand-built Config
	// falls back to auth's default.
	lifetime, _ := time.ParseDuration(cfg.RefreshableAccessTokenLifetime)
	return auth.New(db, cfg.ServerName, auth.WithAccessTokenLifetime(lifetime), auth.WithXForwardedFor(cfg.TrustXForwardedFor))
}

// registerAccounts adds the account modules' routes.
func (a *API) registerAccounts(r *mux.Router) {
	if a.db == nil {
		return // a client API without storage serves only the static endpoints
	}
	a.registerRegister(r)
	a.registerLogin(r)
	a.registerSharedSecret(r)
	a.registerRegistrationTokens(r)
	a.registerAccountManagement(r)
	a.registerDevices(r)
	a.registerProfile(r)
	a.registerCapabilities(r)
	a.registerUserDirectory(r)
	a.registerOpenID(r)
}

// writeErr answers with err, including the 401 of user-interactive auth.
func writeErr(w http.ResponseWriter, r *http.Request, err error) {
	auth.WriteError(w, r, err)
}

// readOptionalJSON is httputil.ReadJSON for a body that may be empty (left
// as dst was).
func readOptionalJSON(r *http.Request, dst any) error {
	body, err := httputil.ReadBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return httputil.ReadJSON(r2, dst)
}

// emptyObject is the {} many endpoints answer with.
var emptyObject = struct{}{}

// writeOK answers 200 with v.
func writeOK(w http.ResponseWriter, r *http.Request, v any) {
	httputil.WriteJSON(w, r, http.StatusOK, v)
}

// localUser returns the localpart of userID if it is a user of this server.
func (a *API) localUser(userID string) (string, bool) {
	if !strings.HasPrefix(userID, "@") {
		return "", false
	}
	lp, server, ok := strings.Cut(userID[1:], ":")
	return lp, ok && lp != "" && server == a.cfg.ServerName
}
