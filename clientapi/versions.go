package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// supportedVersions are the spec versions Myelin serves: a version goes
// here once the behaviour it requires of the core API works, because
// clients and bridges trust the list (Dendrite stayed at v1.2 for years,
// which broke bridges that needed later features; listing versions we do
// not serve would break them the other way).
//
// The core of every version up to v1.11 is served: accounts and UIA,
// login and refresh tokens, devices, profiles, rooms in versions 1–12
// (create, join, knock, restricted joins, invite, leave, kick, ban, upgrade),
// aliases and the directory, events, redactions, timestamp_to_event,
// /sync with filters, /messages, /context, typing, receipts (private and
// threaded), read markers, presence, account data and tags, and the media
// repository (mediaapi) with v1.11's authenticated media endpoints, which
// clients that see v1.11 use.
//
// End-to-end encryption (keys, cross-signing, key backup, send-to-device)
// is served. Optional modules that later issues build answer
// M_UNRECOGNIZED until then, as the spec allows a server that does not
// implement a module: push rules, spaces.
var supportedVersions = []string{
	"r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11",
}

// unstableFeatures advertises experimental (MSC) features, by namespaced
// name: MSC3814 dehydrated devices (dehydrated.go).
var unstableFeatures = map[string]bool{"org.matrix.msc3814": true}

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
