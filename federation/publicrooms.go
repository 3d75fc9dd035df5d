package federation

// The published room directory over federation (server-server-api
// "Public Room Directory", public_rooms.yaml): GET and POST
// /_matrix/federation/v1/publicRooms list this server's published rooms,
// the same entries and pagination tokens as the client API's /publicRooms
// (both are roomserver.PublicRooms).

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
)

func (a *API) registerPublicRooms(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/publicRooms", a.getPublicRooms).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/publicRooms", a.postPublicRooms).Methods(http.MethodPost)
}

// getPublicRooms implements GET /_matrix/federation/v1/publicRooms.
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := roomserver.PublicRoomsQuery{Since: v.Get("since"), ThirdPartyInstanceID: v.Get("third_party_instance_id")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must be a non-negative integer`))
			return
		}
		q.Limit = n
	}
	switch s := v.Get("include_all_networks"); s {
	case "", "false":
	case "true":
		q.IncludeAllNetworks = true
	default:
		httputil.WriteError(w, r, httputil.InvalidParam(`"include_all_networks" must be true or false`))
		return
	}
	a.listPublicRooms(w, r, q)
}

// postPublicRooms implements POST /_matrix/federation/v1/publicRooms.
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Limit                *int                          `json:"limit"`
		Since                string                        `json:"since"`
		Filter               *roomserver.PublicRoomsFilter `json:"filter"`
		IncludeAllNetworks   bool                          `json:"include_all_networks"`
		ThirdPartyInstanceID string                        `json:"third_party_instance_id"`
	}
	if err := httputil.ReadJSON(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	q := roomserver.PublicRoomsQuery{Since: body.Since, IncludeAllNetworks: body.IncludeAllNetworks, ThirdPartyInstanceID: body.ThirdPartyInstanceID}
	if body.Limit != nil {
		if *body.Limit < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must not be negative`))
			return
		}
		q.Limit = *body.Limit
	}
	if body.Filter != nil {
		q.Filter = *body.Filter
	}
	a.listPublicRooms(w, r, q)
}

// listPublicRooms answers with a page of the directory.
func (a *API) listPublicRooms(w http.ResponseWriter, r *http.Request, q roomserver.PublicRoomsQuery) {
	if q.IncludeAllNetworks && q.ThirdPartyInstanceID != "" {
		httputil.WriteError(w, r, httputil.InvalidParam("third_party_instance_id cannot be used with include_all_networks"))
		return
	}
	page, err := a.rs.PublicRooms(r.Context(), q)
	if errors.Is(err, roomserver.ErrInvalidSince) {
		err = httputil.InvalidParam("invalid since token")
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, page)
}
