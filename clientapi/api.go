package clientapi

import (
	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/config"
)

// Deps is what the client API is built from. It grows as modules land
// (storage, the roomserver, sync, ...).
type Deps struct {
	Config *config.Config
}

// API is the Client-Server API.
type API struct {
	cfg *config.Config
}

// New builds the client API.
func New(d Deps) *API {
	return &API{cfg: d.Config}
}

// Register adds every client API endpoint to r, which should come from
// httputil.NewRouter (Matrix 404/405 answers, route templates for metrics).
// Each module registers its own routes in its own file.
func (a *API) Register(r *mux.Router) {
	a.registerVersions(r)
	a.registerWellKnown(r)
	registerLegacyR0(r)
}
