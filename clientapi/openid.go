package clientapi

// OpenID (client-server-api "OpenID", openid.yaml): POST
// /user/{userId}/openid/request_token gives the user a token that a third
// party exchanges for their user ID at this server's federation API
// (/_matrix/federation/v1/openid/userinfo, federation/openid.go).

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
)

func (a *API) registerOpenID(r *mux.Router) {
	r.HandleFunc(v3Prefix+"user/{userId}/openid/request_token", a.auth.Required(a.requestOpenIDToken)).Methods(http.MethodPost)
}

// requestOpenIDToken implements POST /user/{userId}/openid/request_token.
func (a *API) requestOpenIDToken(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	if userID := httputil.PathVar(r, "userId"); userID != d.UserID {
		httputil.WriteError(w, r, httputil.Forbidden("cannot request an OpenID token for another user"))
		return
	}
	// The body is reserved ({}). Some clients send none, and Synapse
	// ignores it: only a body that is there must be an object.
	raw, err := httputil.ReadBody(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if _, err := httputil.ReadJSONObject(r); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	token, err := auth.IssueOpenIDToken(r.Context(), a.db, d.UserID, time.Now())
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{
		"access_token":       token,
		"token_type":         "Bearer",
		"matrix_server_name": a.cfg.ServerName,
		"expires_in":         int(auth.OpenIDTokenLifetime / time.Second),
	})
}
