package federation

// End-to-end encryption for other servers (server-server-api "End-to-End
// Encryption", "Device Management"): GET /_matrix/federation/v1/user/devices/{userId},
// POST /user/keys/query and POST /user/keys/claim, for our users. The keys
// and their rules are clientapi/e2ee's, shared with the client API.

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

func (a *API) registerUserKeys(r *mux.Router) {
	if a.e2ee == nil {
		return
	}
	r.HandleFunc("/_matrix/federation/v1/user/devices/{userId}", a.getUserDevices).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/user/keys/query", a.postUserKeysQuery).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/federation/v1/user/keys/claim", a.postUserKeysClaim).Methods(http.MethodPost)
}

// getUserDevices implements GET /_matrix/federation/v1/user/devices/{userId}:
// a local user's devices with their keys, and their master and
// self-signing keys.
func (a *API) getUserDevices(w http.ResponseWriter, r *http.Request) {
	res, err := a.e2ee.UserDevices(r.Context(), httputil.PathVar(r, "userId"))
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, res)
}

// postUserKeysQuery implements POST /_matrix/federation/v1/user/keys/query.
func (a *API) postUserKeysQuery(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.DeviceKeys == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"device_keys" is required`))
		return
	}
	res, err := a.e2ee.QueryLocal(r.Context(), req.DeviceKeys)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{
		"device_keys":       res.DeviceKeys,
		"master_keys":       res.MasterKeys,
		"self_signing_keys": res.SelfSigningKeys,
	})
}

// postUserKeysClaim implements POST /_matrix/federation/v1/user/keys/claim.
func (a *API) postUserKeysClaim(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.OneTimeKeys == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"one_time_keys" is required`))
		return
	}
	res, err := a.e2ee.ClaimLocal(r.Context(), req.OneTimeKeys)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"one_time_keys": res.OneTimeKeys})
}
