package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

type wellKnownClient struct {
	Homeserver struct {
		BaseURL string `json:"base_url"`
	} `json:"m.homeserver"`
}

func (a *API) registerWellKnown(r *mux.Router) {
	r.HandleFunc("/.well-known/matrix/client", a.getWellKnownClient).Methods(http.MethodGet)
}

// getWellKnownClient implements GET /.well-known/matrix/client
// (client-server-api "Well-known URIs"): the client API's base URL from
// well_known_client_base_url, or 404 when it is not configured.
func (a *API) getWellKnownClient(w http.ResponseWriter, r *http.Request) {
	if a.cfg.WellKnownClientBaseURL == "" {
		httputil.WriteError(w, r, httputil.NotFound("client discovery is not configured on this server (well_known_client_base_url)"))
		return
	}
	var resp wellKnownClient
	resp.Homeserver.BaseURL = a.cfg.WellKnownClientBaseURL
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}
