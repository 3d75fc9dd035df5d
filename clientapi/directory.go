package clientapi

// The published room directory (client-server-api "Published room
// directory", list_public_rooms.yaml): GET and POST /publicRooms, and GET and
// PUT /directory/list/room/{roomId}.
//
// The listing itself is the roomserver's (PublicRooms), shared with the
// federation API's /publicRooms; with "server" naming another server, the
// listing is that server's, asked over federation.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
)

func (a *API) registerDirectory(r *mux.Router) {
	// Listing needs no access token, as in Synapse by default; the
	// filtered POST form does (list_public_rooms.yaml).
	r.HandleFunc(v3Prefix+"publicRooms", a.getPublicRooms).Methods(http.MethodGet)
	r.HandleFunc(v3Prefix+"publicRooms", a.auth.Required(a.postPublicRooms)).Methods(http.MethodPost)
	const p = v3Prefix + "directory/list/room/{roomId}"
	r.HandleFunc(p, a.getRoomVisibility).Methods(http.MethodGet)
	r.HandleFunc(p, a.auth.Required(a.putRoomVisibility)).Methods(http.MethodPut)
}

// getPublicRooms implements GET /publicRooms.
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	var q roomserver.PublicRoomsQuery
	v := r.URL.Query()
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must be a non-negative integer`))
			return
		}
		q.Limit = n
	}
	q.Since = v.Get("since")
	a.listPublicRooms(w, r, nil, v.Get("server"), q)
}

// postPublicRooms implements POST /publicRooms.
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var body struct {
		Limit                *int            `json:"limit"`
		Since                string          `json:"since"`
		Filter               json.RawMessage `json:"filter"`
		IncludeAllNetworks   bool            `json:"include_all_networks"`
		ThirdPartyInstanceID string          `json:"third_party_instance_id"`
	}
	if _, err := readObjectInto(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var q roomserver.PublicRoomsQuery
	if body.Limit != nil {
		if *body.Limit < 0 {
			httputil.WriteError(w, r, httputil.InvalidParam(`"limit" must not be negative`))
			return
		}
		q.Limit = *body.Limit
	}
	if len(body.Filter) > 0 && string(body.Filter) != "null" {
		if _, err := rawObject(body.Filter, "filter"); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if err := json.Unmarshal(body.Filter, &q.Filter); err != nil {
			httputil.WriteError(w, r, badJSONError(err))
			return
		}
	}
	if body.IncludeAllNetworks && body.ThirdPartyInstanceID != "" {
		httputil.WriteError(w, r, httputil.InvalidParam("third_party_instance_id cannot be used with include_all_networks"))
		return
	}
	q.Since, q.IncludeAllNetworks, q.ThirdPartyInstanceID = body.Since, body.IncludeAllNetworks, body.ThirdPartyInstanceID
	a.listPublicRooms(w, r, d, r.URL.Query().Get("server"), q)
}

// listPublicRooms answers a listing: this server's directory, or with
// server naming another one, that server's, asked over federation. d is
// the requester, nil when not authenticated (yet).
func (a *API) listPublicRooms(w http.ResponseWriter, r *http.Request, d *auth.Device, server string, q roomserver.PublicRoomsQuery) {
	if server != "" && server != a.cfg.ServerName {
		a.listRemotePublicRooms(w, r, d, server, q)
		return
	}
	page, err := a.rs.PublicRooms(r.Context(), q)
	if errors.Is(err, roomserver.ErrInvalidSince) {
		err = httputil.InvalidParam("invalid since token " + quoteID(q.Since))
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, page)
}

// listRemotePublicRooms answers with another server's directory. As in
// Synapse, only a user may make this server ask another one (the local
// listing needs no access token).
func (a *API) listRemotePublicRooms(w http.ResponseWriter, r *http.Request, d *auth.Device, server string, q roomserver.PublicRoomsQuery) {
	if d == nil {
		if _, err := a.auth.Authenticate(r); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	if err := config.ValidServerName(server); err != nil {
		httputil.WriteError(w, r, httputil.InvalidParam(`"server" is not a server name: `+err.Error()))
		return
	}
	if a.federation == nil {
		httputil.WriteError(w, r, httputil.NotFound("the room directory of "+server+" cannot be fetched: this server does not federate"))
		return
	}
	page, err := a.federation.PublicRooms(r.Context(), server, q)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, page)
}

// getRoomVisibility implements GET /directory/list/room/{roomId}.
func (a *API) getRoomVisibility(w http.ResponseWriter, r *http.Request) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.checkRoomExists(r.Context(), roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	published, err := a.db.IsRoomPublished(r.Context(), roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	vis := "private"
	if published {
		vis = "public"
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"visibility": vis})
}

// putRoomVisibility implements PUT /directory/list/room/{roomId}: as in
// Synapse, server admins and members with the power to send
// m.room.canonical_alias may publish or unpublish the room.
func (a *API) putRoomVisibility(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := httputil.ReadJSON(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	vis := "public"
	if body.Visibility != nil {
		vis = *body.Visibility
	}
	if vis != "public" && vis != "private" {
		httputil.WriteError(w, r, httputil.InvalidParam(`"visibility" must be "public" or "private"`))
		return
	}
	ctx := r.Context()
	if err := a.checkRoomExists(ctx, roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !d.IsAdmin {
		ok, err := a.canSendState(ctx, roomID, d.UserID, "m.room.canonical_alias")
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if !ok {
			httputil.WriteError(w, r, httputil.Forbidden("you are not permitted to edit the published room list for this room"))
			return
		}
	}
	if err := a.db.SetRoomPublished(ctx, roomID, vis == "public"); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}
