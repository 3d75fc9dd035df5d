package federation

// Queries (server-server-api "Querying for information"): GET
// /_matrix/federation/v1/query/profile and /query/directory.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerQuery(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/query/profile", a.queryProfile).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/query/directory", a.queryDirectory).Methods(http.MethodGet)
}

// queryProfile implements GET /_matrix/federation/v1/query/profile: the
// whole profile of a local user, or one field of it. A user without an
// account, or without the field asked for, is 404 M_NOT_FOUND; a user of
// another server is 400, as in Synapse.
func (a *API) queryProfile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	userID := q.Get("user_id")
	if userID == "" {
		httputil.WriteError(w, r, httputil.MissingParam("user_id is required"))
		return
	}
	localpart, server, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !strings.HasPrefix(userID, "@") || !ok || localpart == "" {
		httputil.WriteError(w, r, httputil.InvalidParam("user_id must be a user ID, @localpart:server"))
		return
	}
	if server != a.cfg.ServerName {
		httputil.WriteError(w, r, httputil.InvalidParam("user "+userID+" is not on this server"))
		return
	}
	if _, err := a.db.GetAccount(r.Context(), localpart); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = httputil.NotFound("user does not exist")
		}
		httputil.WriteError(w, r, err)
		return
	}
	profile, err := a.db.Profile(r.Context(), localpart)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if field := q.Get("field"); field != "" {
		v, ok := profile[field]
		if !ok {
			httputil.WriteError(w, r, httputil.NotFound("the profile has no "+field))
			return
		}
		profile = map[string]json.RawMessage{field: v}
	}
	httputil.WriteJSON(w, r, http.StatusOK, profile)
}

// queryDirectory implements GET /_matrix/federation/v1/query/directory: the
// room a local alias names, and the servers that can help to join it (this
// one first, then those of the joined members). 404 M_NOT_FOUND for an
// unknown alias or one of another server, as Synapse.
func (a *API) queryDirectory(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	alias := r.URL.Query().Get("room_alias")
	if alias == "" {
		httputil.WriteError(w, r, httputil.MissingParam("room_alias is required"))
		return
	}
	localpart, server, ok := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	if !strings.HasPrefix(alias, "#") || !ok || localpart == "" {
		httputil.WriteError(w, r, httputil.InvalidParam("room_alias must be a room alias, #localpart:server"))
		return
	}
	if server != a.cfg.ServerName {
		httputil.WriteError(w, r, httputil.NotFound("room alias "+alias+" is not on this server"))
		return
	}
	ra, err := a.db.GetAlias(ctx, alias)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = httputil.NotFound("room alias " + alias + " not found")
		}
		httputil.WriteError(w, r, err)
		return
	}
	members, err := a.rs.JoinedMembers(ctx, ra.RoomID)
	if err != nil && !errors.Is(err, roomserver.ErrRoomNotFound) {
		httputil.WriteError(w, r, err)
		return
	}
	servers := []string{a.cfg.ServerName}
	seen := map[string]bool{a.cfg.ServerName: true}
	for _, m := range members {
		if s := roomserver.UserServer(m); s != "" && !seen[s] {
			seen[s] = true
			servers = append(servers, s)
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"room_id": ra.RoomID, "servers": servers})
}
