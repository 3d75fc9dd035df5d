package clientapi

// Reading a room's state and members (client-server-api "Getting events for
// a room", rooms.yaml): GET /rooms/{roomId}/state,
// /rooms/{roomId}/state/{eventType}/{stateKey}, /rooms/{roomId}/members
// and /rooms/{roomId}/joined_members. Who may read what is canRead's
// (rooms.go): members see the current state, users who left the state when
// they left, anyone a world_readable room's current state.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// clientFormat formats the events these endpoints return (never changed).
var clientFormat = clientevent.Options{WithRoomID: true}

func (a *API) registerRoomReads(r *mux.Router) {
	const p = "/_matrix/client/v3/rooms/{roomId}"
	r.HandleFunc(p+"/state", a.auth.Required(a.getRoomState)).Methods(http.MethodGet)
	// The state key may be empty, with or without the trailing slash.
	r.HandleFunc(p+"/state/{eventType}", a.auth.Required(a.getStateEvent)).Methods(http.MethodGet)
	r.HandleFunc(p+"/state/{eventType}/{stateKey:[^/]*}", a.auth.Required(a.getStateEvent)).Methods(http.MethodGet)
	r.HandleFunc(p+"/members", a.auth.Required(a.getMembers)).Methods(http.MethodGet)
	r.HandleFunc(p+"/joined_members", a.auth.Required(a.getJoinedMembers)).Methods(http.MethodGet)
}

// getRoomState implements GET /rooms/{roomId}/state.
func (a *API) getRoomState(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	acc, err := a.roomReadAccess(r, d)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	state, err := a.readableState(r.Context(), acc, "")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, clientFormat.FormatAll(state))
}

// getStateEvent implements GET /rooms/{roomId}/state/{eventType}/{stateKey}
// with ?format=content (the default: the content alone) or event.
func (a *API) getStateEvent(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	evType, stateKey := httputil.PathVar(r, "eventType"), httputil.PathVar(r, "stateKey")
	format := r.URL.Query().Get("format")
	if format != "" && format != "content" && format != "event" {
		httputil.WriteError(w, r, httputil.InvalidParam(`"format" must be "content" or "event"`))
		return
	}
	acc, err := a.canRead(r.Context(), d.UserID, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var found *storage.EventRecord
	k := storage.StateKey{Type: evType, StateKey: stateKey}
	if acc.LeftAt == nil {
		recs, err := a.db.CurrentStateEvents(r.Context(), acc.Room.NID, []storage.StateKey{k})
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if len(recs) == 1 {
			found = recs[0]
		}
	} else {
		state, err := a.readableState(r.Context(), acc, evType)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		for _, ev := range state {
			if ev.StateKey != nil && *ev.StateKey == stateKey {
				found = ev
			}
		}
	}
	if found == nil {
		httputil.WriteError(w, r, httputil.NotFound("the room has no state event of type "+strconv.Quote(evType)+" and state key "+strconv.Quote(stateKey)))
		return
	}
	if format == "event" {
		httputil.WriteJSON(w, r, http.StatusOK, clientFormat.Format(found))
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, clientevent.Content(found))
}

// memberships are the values of the membership filters of /members.
var memberships = []string{"join", "invite", "knock", "leave", "ban"}

// getMembers implements GET /rooms/{roomId}/members with at, membership and
// not_membership. As in Synapse, an event is listed when its membership is
// membership (if given) and is not not_membership (if given).
func (a *API) getMembers(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	want, notWant := q.Get("membership"), q.Get("not_membership")
	for name, v := range map[string]string{"membership": want, "not_membership": notWant} {
		if v != "" && !slices.Contains(memberships, v) {
			httputil.WriteError(w, r, httputil.InvalidParam(strconv.Quote(name)+" must be one of "+strings.Join(memberships, ", ")))
			return
		}
	}
	atPos := int64(-1)
	if at := q.Get("at"); at != "" {
		tok, err := synctoken.Parse("at", at)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		atPos = tok.Pos
	}
	acc, err := a.canRead(r.Context(), d.UserID, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var state []*storage.EventRecord
	if acc.LeftAt != nil && (atPos < 0 || atPos > acc.LeftAt.StreamPos) {
		// Nothing after the user left, whatever "at" asks for.
		atPos = acc.LeftAt.StreamPos
	}
	if atPos >= 0 {
		state, err = a.db.RoomStateAt(r.Context(), roomID, atPos)
	} else {
		state, err = a.db.CurrentState(r.Context(), acc.Room.NID, "m.room.member")
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	chunk := make([]json.RawMessage, 0, len(state))
	for _, ev := range state {
		if ev.Type != "m.room.member" || (want != "" && ev.Membership != want) || (notWant != "" && ev.Membership == notWant) {
			continue
		}
		chunk = append(chunk, clientFormat.Format(ev))
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"chunk": chunk})
}

type joinedMember struct {
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// getJoinedMembers implements GET /rooms/{roomId}/joined_members, for
// members of the room (or anyone, in a world_readable room).
func (a *API) getJoinedMembers(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	acc, err := a.roomReadAccess(r, d)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if acc.LeftAt != nil {
		httputil.WriteError(w, r, httputil.Forbidden("getting joined members while not being a current member of the room is forbidden"))
		return
	}
	members, err := a.db.CurrentState(r.Context(), acc.Room.NID, "m.room.member")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	joined := map[string]joinedMember{}
	for _, ev := range members {
		if ev.Membership == "join" && ev.StateKey != nil {
			joined[*ev.StateKey] = joinedMember{
				DisplayName: contentString(ev.JSON, "displayname"),
				AvatarURL:   contentString(ev.JSON, "avatar_url"),
			}
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"joined": joined})
}

// roomReadAccess is canRead for the room named by the request's {roomId}.
func (a *API) roomReadAccess(r *http.Request, d *auth.Device) (*readAccess, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	return a.canRead(r.Context(), d.UserID, roomID)
}
