package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// supportedVersions are the spec versions Myelin really supports, and only
// those: a version goes here once every endpoint and behaviour it requires
// works, because clients and bridges trust the list (Dendrite stayed at
// v1.2 for years, which broke bridges that needed later features; listing
// versions we do not implement would break them the other way).
//
// The list is empty while the client API core (accounts, rooms, /sync) is
// being built: no spec version can be honestly claimed yet. It grows here,
// with the features.
var supportedVersions = []string{}

// unstableFeatures advertises experimental (MSC) features, by namespaced
// name. None are implemented yet.
var unstableFeatures = map[string]bool{}

type versionsResponse struct {
	Versions         []string        `json:"versions"`
	UnstableFeatures map[string]bool `json:"unstable_features"`
}

func (a *API) registerVersions(r *mux.Router) {
	r.HandleFunc("/_matrix/client/versions", a.getVersions).Methods(http.MethodGet)
}

// getVersions implements GET /_matrix/client/versions (no authentication).
func (a *API) getVersions(w http.ResponseWriter, r *http.Request) {
	httputil.WriteJSON(w, r, http.StatusOK, versionsResponse{
		Versions:         supportedVersions,
		UnstableFeatures: unstableFeatures,
	})
}
