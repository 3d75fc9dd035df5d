package federation

// GET /_matrix/federation/v1/hierarchy/{roomId} (server-server-api
// "Spaces"): a space room held here and its children, for another server
// walking a space for its user. The asking server applies the user-level
// rules itself; restricted rooms come with their allowed rooms for that.

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
)

func (a *API) registerHierarchy(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/hierarchy/{roomId}", a.getHierarchy).Methods(http.MethodGet)
}

// getHierarchy answers with the room (404 M_NOT_FOUND when it is not held
// here or the origin may not see it), the children held here that the
// origin may see, and the IDs of those it may not.
func (a *API) getHierarchy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	origin := Origin(ctx)
	roomID := httputil.PathVar(r, "roomId")
	var suggestedOnly bool
	switch r.URL.Query().Get("suggested_only") {
	case "", "false":
	case "true":
		suggestedOnly = true
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("suggested_only must be true or false"))
		return
	}
	notFound := httputil.NotFound("room " + roomID + " is not a room this server can describe to " + origin)
	root, err := a.rs.SpaceRoomOf(ctx, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if root == nil {
		httputil.WriteError(w, r, notFound)
		return
	}
	if err := a.checkACL(r, roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if ok, err := a.rs.ServerMaySeeSpaceRoom(ctx, root, origin); err != nil || !ok {
		if err == nil {
			err = notFound
		}
		httputil.WriteError(w, r, err)
		return
	}
	if suggestedOnly {
		kept := root.ChildrenState[:0:0]
		for _, c := range root.ChildrenState {
			if c.Suggested() {
				kept = append(kept, c)
			}
		}
		root.ChildrenState = kept
	}
	children := []roomserver.SpaceRoom{}
	inaccessible := []string{}
	for _, c := range root.ChildrenState {
		child, err := a.rs.SpaceRoomOf(ctx, c.StateKey)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if child == nil {
			continue // not held here: the origin asks the child's via servers
		}
		ok, err := a.rs.ServerMaySeeSpaceRoom(ctx, child, origin)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if ok {
			children = append(children, *child)
		} else {
			inaccessible = append(inaccessible, child.RoomID)
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"room": root, "children": children, "inaccessible_children": inaccessible})
}
