package clientapi

// GET /_matrix/client/v1/rooms/{roomId}/hierarchy (client-server-api
// "Spaces"): the space tree under a room, depth first, children in the
// spec's order, as far as max_depth, a page of limit rooms at a time.
// Rooms held here are read from the roomserver; others are asked of the
// servers their m.space.child events name (the federation /hierarchy).

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
)

const (
	defaultHierarchyLimit = 50
	maxHierarchyLimit     = 100
	maxHierarchyDepth     = 10
	// maxHierarchyRooms bounds the rooms one request walks (pages after
	// the first walk past the earlier pages again).
	maxHierarchyRooms = 1000
)

func (a *API) registerHierarchy(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v1/rooms/{roomId}/hierarchy", a.auth.Required(a.getHierarchy)).Methods(http.MethodGet)
}

// hierarchyParams are a request's walk: what from pins down.
type hierarchyParams struct {
	skip          int
	maxDepth      int
	suggestedOnly bool
}

// token is the from/next_batch token: the rooms already returned and the
// walk's parameters, which may not change between pages.
func (p hierarchyParams) token() string {
	s := 0
	if p.suggestedOnly {
		s = 1
	}
	return fmt.Sprintf("h%d_%d_%d", p.skip, p.maxDepth, s)
}

func parseHierarchyParams(r *http.Request) (hierarchyParams, int, error) {
	q := r.URL.Query()
	p := hierarchyParams{maxDepth: maxHierarchyDepth}
	switch q.Get("suggested_only") {
	case "", "false":
	case "true":
		p.suggestedOnly = true
	default:
		return p, 0, httputil.InvalidParam("suggested_only must be true or false")
	}
	limit := defaultHierarchyLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, 0, httputil.InvalidParam("limit must be an integer greater than zero")
		}
		limit = min(n, maxHierarchyLimit)
	}
	if s := q.Get("max_depth"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, 0, httputil.InvalidParam("max_depth must be a non-negative integer")
		}
		p.maxDepth = min(n, maxHierarchyDepth)
	}
	if s := q.Get("from"); s != "" {
		var skip, depth, sugg int
		if _, err := fmt.Sscanf(s, "h%d_%d_%d", &skip, &depth, &sugg); err != nil || skip < 0 || s != (hierarchyParams{skip, depth, sugg == 1}).token() {
			return p, 0, httputil.InvalidParam("unknown from token")
		}
		if depth != p.maxDepth || (sugg == 1) != p.suggestedOnly {
			return p, 0, httputil.InvalidParam("max_depth and suggested_only cannot change between pages")
		}
		p.skip = skip
	}
	return p, limit, nil
}

// getHierarchy implements GET /rooms/{roomId}/hierarchy. A root the user
// may not see is 403 M_FORBIDDEN, one no server knows 404.
func (a *API) getHierarchy(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rootID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	p, limit, err := parseHierarchyParams(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	walk := &hierarchyWalk{a: a, ctx: ctx, userID: d.UserID, suggestedOnly: p.suggestedOnly, remote: map[string]*roomserver.SpaceRoom{}}
	root, err := walk.room(rootID, nil)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if root == nil {
		httputil.WriteError(w, r, httputil.NotFound("room "+rootID+" is not known here or to the servers asked"))
		return
	}
	if ok, err := walk.maySee(root); err != nil || !ok {
		if err == nil {
			err = httputil.Forbidden("you may not see room " + rootID)
		}
		httputil.WriteError(w, r, err)
		return
	}
	type queued struct {
		id    string
		depth int
		via   []string
	}
	stack := []queued{{id: rootID}}
	seen := map[string]bool{}
	rooms := []*roomserver.SpaceRoom{}
	walked := 0
	for len(stack) > 0 && len(rooms) < limit && walked < maxHierarchyRooms {
		q := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[q.id] {
			continue
		}
		seen[q.id] = true
		sr, err := walk.room(q.id, q.via)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if sr == nil {
			continue
		}
		if ok, err := walk.maySee(sr); err != nil {
			httputil.WriteError(w, r, err)
			return
		} else if !ok {
			continue
		}
		walked++
		if walked > p.skip {
			rooms = append(rooms, sr)
		}
		if q.depth >= p.maxDepth {
			continue
		}
		// Pushed last to first, so the first child is walked next.
		for i := len(sr.ChildrenState) - 1; i >= 0; i-- {
			c := sr.ChildrenState[i]
			if (p.suggestedOnly && !c.Suggested()) || seen[c.StateKey] || !strings.HasPrefix(c.StateKey, "!") {
				continue
			}
			stack = append(stack, queued{id: c.StateKey, depth: q.depth + 1, via: c.Via()})
		}
	}
	resp := map[string]any{"rooms": rooms}
	if len(stack) > 0 {
		p.skip = walked
		resp["next_batch"] = p.token()
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// hierarchyWalk is one request's walk: who asks, and what other servers
// said about the rooms they hold.
type hierarchyWalk struct {
	a             *API
	ctx           context.Context
	userID        string
	suggestedOnly bool
	// remote: rooms other servers described, by ID (a room's answer
	// describes its children too).
	remote map[string]*roomserver.SpaceRoom
}

// room returns a room's entry: from the roomserver when this server is in
// the room, else from what another server said (asking the via servers
// when nothing was said yet); nil when no one knows it.
func (hw *hierarchyWalk) room(roomID string, via []string) (*roomserver.SpaceRoom, error) {
	a := hw.a
	if in, err := a.serverInRoom(hw.ctx, roomID); err != nil {
		return nil, err
	} else if in {
		return a.rs.SpaceRoomOf(hw.ctx, roomID)
	}
	if sr := hw.remote[roomID]; sr != nil && sr.ChildrenState != nil {
		return sr, nil
	}
	if a.federation == nil {
		return hw.remote[roomID], nil
	}
	if len(via) == 0 {
		via = a.residentServers(hw.ctx, roomID, hw.userID, nil)
	}
	root, children, err := a.federation.Hierarchy(hw.ctx, roomID, via, hw.suggestedOnly)
	if err != nil {
		// Unreachable or unknown there: the walk goes on without it.
		return hw.remote[roomID], nil
	}
	for i := range children {
		c := children[i]
		if c.ChildrenState == nil {
			c.ChildrenState = []roomserver.SpaceChild{}
		}
		hw.remote[c.RoomID] = &c
	}
	hw.remote[roomID] = root
	return root, nil
}

func (hw *hierarchyWalk) maySee(sr *roomserver.SpaceRoom) (bool, error) {
	return hw.a.rs.UserMaySeeSpaceRoom(hw.ctx, sr, hw.userID)
}
