package federation

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// ImplementationName is this server software's name in
// GET /_matrix/federation/v1/version.
const ImplementationName = "Myelin"

type versionResponse struct {
	Server struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"server"`
}

func (a *API) registerVersion(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/version", a.getVersion).Methods(http.MethodGet)
}

// getVersion implements GET /_matrix/federation/v1/version. It needs no
// request signature, like Synapse's, so that monitoring can call it.
func (a *API) getVersion(w http.ResponseWriter, r *http.Request) {
	var resp versionResponse
	resp.Server.Name = ImplementationName
	resp.Server.Version = a.version
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}
