package clientapi

// Room aliases (client-server-api "Room aliases", directory.yaml):
// PUT, GET and DELETE /directory/room/{roomAlias}, and GET
// /rooms/{roomId}/aliases. Only aliases of this server are stored here;
// others would be resolved over federation.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	rsauth "github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerAliases(r *mux.Router) {
	const p = v3Prefix + "directory/room/{roomAlias}"
	r.HandleFunc(p, a.auth.Required(a.putAlias)).Methods(http.MethodPut)
	// Resolving an alias needs no access token (directory.yaml).
	r.HandleFunc(p, a.getAlias).Methods(http.MethodGet)
	r.HandleFunc(p, a.auth.Required(a.deleteAlias)).Methods(http.MethodDelete)
	r.HandleFunc(v3Prefix+"rooms/{roomId}/aliases", a.auth.Required(a.getRoomAliases)).Methods(http.MethodGet)
}

// localAliasVar reads the {roomAlias} path variable, which must be an alias
// of this server (others cannot be created or deleted here).
func (a *API) localAliasVar(r *http.Request) (string, error) {
	alias := httputil.PathVar(r, "roomAlias")
	local, server, err := parseAlias(alias)
	if err != nil {
		return "", err
	}
	if server != a.cfg.ServerName {
		return "", httputil.InvalidParam("room alias " + quoteID(alias) + " is not on this server (" + a.cfg.ServerName + ")")
	}
	return alias, checkAliasLocalpart(local)
}

// putAlias implements PUT /directory/room/{roomAlias}: members of a room
// may give it aliases (Synapse's require_membership_for_aliases).
func (a *API) putAlias(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	alias, err := a.localAliasVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var req struct {
		RoomID *string `json:"room_id"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.RoomID == nil {
		httputil.WriteError(w, r, httputil.MissingParam(`"room_id" is required`))
		return
	}
	if err := checkRoomID(*req.RoomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if err := a.checkRoomExists(ctx, *req.RoomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !d.IsAdmin {
		m, err := a.rs.Membership(ctx, *req.RoomID, d.UserID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if m != "join" {
			httputil.WriteError(w, r, httputil.Forbidden("you must be in the room to create an alias for it"))
			return
		}
	}
	err = a.db.CreateAlias(ctx, alias, *req.RoomID, d.UserID)
	if errors.Is(err, storage.ErrAliasExists) {
		// directory.yaml: 409, with M_UNKNOWN in its example (as Synapse).
		err = httputil.NewError(http.StatusConflict, httputil.CodeUnknown, "room alias "+alias+" already exists")
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}

// getAlias implements GET /directory/room/{roomAlias}.
func (a *API) getAlias(w http.ResponseWriter, r *http.Request) {
	alias := httputil.PathVar(r, "roomAlias")
	ctx := r.Context()
	if _, server, err := parseAlias(alias); err == nil && server != a.cfg.ServerName && a.federation != nil {
		roomID, servers, err := a.federation.QueryAlias(ctx, alias)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
		return
	}
	roomID, err := a.resolveAlias(ctx, alias)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	// The servers that can be asked to join through: this one, then the
	// other servers with joined members (as Synapse lists them).
	servers := []string{a.cfg.ServerName}
	members, err := a.rs.JoinedMembers(ctx, roomID)
	if err != nil && !errors.Is(err, roomserver.ErrRoomNotFound) {
		httputil.WriteError(w, r, err)
		return
	}
	for _, m := range members {
		if s := pdu.DomainOf(m); s != "" && !slices.Contains(servers, s) {
			servers = append(servers, s)
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
}

// resolveAlias returns the room a local alias names: 400 M_INVALID_PARAM
// for a malformed alias, 404 M_NOT_FOUND for an unknown one or one of
// another server (resolveAliasServers asks other servers).
func (a *API) resolveAlias(ctx context.Context, alias string) (string, error) {
	_, server, err := parseAlias(alias)
	if err != nil {
		return "", err
	}
	if server != a.cfg.ServerName {
		return "", httputil.NotFound("room alias " + alias + " is on another server, which this server cannot ask yet")
	}
	m, err := a.db.GetAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return "", httputil.NotFound("room alias " + alias + " not found")
	}
	if err != nil {
		return "", err
	}
	return m.RoomID, nil
}

// deleteAlias implements DELETE /directory/room/{roomAlias}. As in
// Synapse, the alias's creator, a server admin, or a member with the
// power to send m.room.canonical_alias may delete it; afterwards the alias
// is taken out of the room's m.room.canonical_alias event when the user
// may change it.
func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	alias, err := a.localAliasVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	m, err := a.db.GetAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		err = httputil.NotFound("room alias " + alias + " not found")
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if m.Creator != d.UserID && !d.IsAdmin {
		ok, err := a.canSendState(ctx, m.RoomID, d.UserID, "m.room.canonical_alias")
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if !ok {
			httputil.WriteError(w, r, httputil.Forbidden("you don't have permission to delete the alias "+alias))
			return
		}
	}
	if err := a.db.DeleteAlias(ctx, alias); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = httputil.NotFound("room alias " + alias + " not found")
		}
		httputil.WriteError(w, r, err)
		return
	}
	a.dropFromCanonicalAlias(context.WithoutCancel(ctx), m.RoomID, d.UserID, alias)
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}

// canSendState reports whether userID is joined to the room and has the
// power to send state events of evType.
func (a *API) canSendState(ctx context.Context, roomID, userID, evType string) (bool, error) {
	m, err := a.rs.Membership(ctx, roomID, userID)
	if err != nil || m != "join" {
		return false, err
	}
	levels, err := a.powerLevels(ctx, roomID)
	if err != nil {
		return false, err
	}
	return levels.UserLevel(userID) >= levels.EventLevel(evType, true), nil
}

// powerLevels returns the room's effective power levels.
func (a *API) powerLevels(ctx context.Context, roomID string) (*rsauth.PowerLevels, error) {
	create, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.create"})
	if err != nil {
		return nil, roomError(err)
	}
	if create == nil {
		return nil, httputil.NotFound("room not found")
	}
	pl, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.power_levels"})
	if err != nil {
		return nil, roomError(err)
	}
	return rsauth.PowerLevelsFromState(create, pl)
}

// dropFromCanonicalAlias removes a deleted alias from the room's
// m.room.canonical_alias event (alias and alt_aliases), sent as userID.
// The alias is gone whatever happens here: a user without the power to
// change the event leaves it as it is (directory.yaml recommends deleting
// the alias anyway), and a failure is only logged.
func (a *API) dropFromCanonicalAlias(ctx context.Context, roomID, userID, alias string) {
	ev, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.canonical_alias"})
	if err != nil || ev == nil {
		return
	}
	var content map[string]json.RawMessage
	if json.Unmarshal(ev.Content(), &content) != nil {
		return
	}
	changed := false
	if gjson.GetBytes(ev.Content(), "alias").Str == alias {
		delete(content, "alias")
		changed = true
	}
	if alt := gjson.GetBytes(ev.Content(), "alt_aliases"); alt.IsArray() {
		var keep []string
		for _, v := range alt.Array() {
			if v.Str == alias {
				changed = true
				continue
			}
			keep = append(keep, v.Str)
		}
		if changed {
			content["alt_aliases"], _ = json.Marshal(keep)
			if len(keep) == 0 {
				delete(content, "alt_aliases")
			}
		}
	}
	if !changed {
		return
	}
	if ok, err := a.canSendState(ctx, roomID, userID, "m.room.canonical_alias"); err != nil || !ok {
		return
	}
	raw, _ := json.Marshal(content)
	empty := ""
	if _, err := a.rs.Send(ctx, roomID, roomserver.EventRequest{
		Type: "m.room.canonical_alias", StateKey: &empty, Sender: userID, Content: raw,
	}); err != nil {
		httputil.Logger(ctx).WarnContext(ctx, "cannot update the canonical alias after deleting an alias", "room", roomID, "alias", alias, "err", err)
	}
}

// getRoomAliases implements GET /rooms/{roomId}/aliases, for members of
// the room and anyone when it is world_readable.
func (a *API) getRoomAliases(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	acc, err := a.roomReadAccess(r, d)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if acc.LeftAt != nil && !d.IsAdmin {
		httputil.WriteError(w, r, httputil.Forbidden("you are not a member of the room"))
		return
	}
	aliases, err := a.db.AliasesForRoom(r.Context(), acc.Room.RoomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string][]string{"aliases": aliases})
}
