package clientapi

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

const (
	r0Prefix = "/_matrix/client/r0/"
	v3Prefix = "/_matrix/client/v3/"
)

// registerLegacyR0 serves every /_matrix/client/r0/... request as the same
// request under /_matrix/client/v3/..., by rewriting the path and routing it
// again through r. One route does it for every endpoint, present and
// future, so no module registers r0 paths by hand. v3 replaced r0 in spec
// v1.1 without changing the endpoints; Synapse still serves both, and older
// clients, bots and bridges use r0.
//
// The metrics and access log name the v3 route template, since the second
// routing overwrites the first.
func registerLegacyR0(r *mux.Router) {
	r.PathPrefix(r0Prefix).Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req2 := req.Clone(req.Context())
		req2.URL.Path = v3Prefix + strings.TrimPrefix(req.URL.Path, r0Prefix)
		if req.URL.RawPath != "" {
			req2.URL.RawPath = v3Prefix + strings.TrimPrefix(req.URL.RawPath, r0Prefix)
		}
		r.ServeHTTP(w, req2)
	}))
}
