package federation

// The federation media endpoints (server-server-api "Content
// Repository"): GET /_matrix/federation/v1/media/download/{mediaId} and
// /thumbnail/{mediaId}, behind Authenticate like every signed endpoint.
// The media repository (mediaapi) answers them; this file only routes.

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// MediaServer serves this server's media to other servers.
type MediaServer interface {
	ServeFederationDownload(w http.ResponseWriter, r *http.Request, mediaID string)
	ServeFederationThumbnail(w http.ResponseWriter, r *http.Request, mediaID string)
}

func (a *API) registerMedia(r *mux.Router) {
	if a.media == nil {
		return
	}
	r.HandleFunc("/_matrix/federation/v1/media/download/{mediaId}", func(w http.ResponseWriter, r *http.Request) {
		a.media.ServeFederationDownload(w, r, httputil.PathVar(r, "mediaId"))
	}).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/media/thumbnail/{mediaId}", func(w http.ResponseWriter, r *http.Request) {
		a.media.ServeFederationThumbnail(w, r, httputil.PathVar(r, "mediaId"))
	}).Methods(http.MethodGet)
}
