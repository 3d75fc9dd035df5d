package federation

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

type wellKnownServer struct {
	Server string `json:"m.server"`
}

// RegisterWellKnown adds GET /.well-known/matrix/server to r. Register does
// it for the federation router; the composition root also calls it for the
// client router.
func (a *API) RegisterWellKnown(r *mux.Router) {
	r.HandleFunc("/.well-known/matrix/server", a.getWellKnownServer).Methods(http.MethodGet)
}

// getWellKnownServer implements GET /.well-known/matrix/server: the
// delegated federation host[:port] from well_known_server, or 404 when it is
// not configured (remote servers then use the server name itself).
func (a *API) getWellKnownServer(w http.ResponseWriter, r *http.Request) {
	if a.cfg.WellKnownServer == "" {
		httputil.WriteError(w, r, httputil.NotFound("server delegation is not configured on this server (well_known_server)"))
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, wellKnownServer{Server: a.cfg.WellKnownServer})
}
