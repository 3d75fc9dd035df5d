package federation

// OpenID (server-server-api "OpenID", openid.yaml): GET
// /_matrix/federation/v1/openid/userinfo tells a third party (an
// integration manager, a widget) which user an OpenID token from
// POST /user/{userId}/openid/request_token belongs to. The third party is
// not a homeserver and cannot sign its request, so this endpoint, unlike
// the rest of /_matrix/federation/, takes no X-Matrix authentication: the
// token is the credential.

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
)

// openIDUserInfoPath is served outside the signed routes (see Register).
const openIDUserInfoPath = "/_matrix/federation/v1/openid/userinfo"

func (a *API) registerOpenID(r *mux.Router) {
	r.HandleFunc(openIDUserInfoPath, a.openIDUserInfo).Methods(http.MethodGet)
}

// openIDUserInfo implements GET /_matrix/federation/v1/openid/userinfo:
// {"sub": user ID}, or 401 M_UNKNOWN_TOKEN for a token unknown or expired
// (401 M_MISSING_TOKEN without one, as Synapse).
func (a *API) openIDUserInfo(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("access_token")
	if token == "" {
		httputil.WriteError(w, r, httputil.MissingToken("the access_token query parameter is required"))
		return
	}
	userID, err := auth.OpenIDTokenUser(r.Context(), a.db, token, a.now())
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"sub": userID})
}
