package federation

// The resident server's side of the membership handshakes
// (server-server-api "Joining Rooms", "Knocking upon a room", "Inviting to
// a room", "Leaving Rooms (Rejecting Invites)"): make_join/send_join (v1
// and v2), make_leave/send_leave (v1 and v2), make_knock/send_knock, and
// invite (v1 and v2). The make_* endpoints build a template on the room's
// current state with roomserver.BuildEvent; the send_* endpoints put the
// remote server's signed event through the input path for received events
// and answer with what the joining server needs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	rsauth "github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Matrix error codes of the handshakes.
const (
	codeIncompatibleRoomVersion = "M_INCOMPATIBLE_ROOM_VERSION"
	codeUnableToGrantJoin       = "M_UNABLE_TO_GRANT_JOIN"
)

func (a *API) registerMembership(r *mux.Router) {
	const p = "/_matrix/federation/"
	r.HandleFunc(p+"v1/make_join/{roomId}/{userId}", a.makeMembership("join")).Methods(http.MethodGet)
	r.HandleFunc(p+"v1/make_leave/{roomId}/{userId}", a.makeMembership("leave")).Methods(http.MethodGet)
	r.HandleFunc(p+"v1/make_knock/{roomId}/{userId}", a.makeMembership("knock")).Methods(http.MethodGet)
	r.HandleFunc(p+"v2/send_join/{roomId}/{eventId}", a.sendJoin(false)).Methods(http.MethodPut)
	r.HandleFunc(p+"v1/send_join/{roomId}/{eventId}", a.sendJoin(true)).Methods(http.MethodPut)
	r.HandleFunc(p+"v2/send_leave/{roomId}/{eventId}", a.sendLeave(false)).Methods(http.MethodPut)
	r.HandleFunc(p+"v1/send_leave/{roomId}/{eventId}", a.sendLeave(true)).Methods(http.MethodPut)
	r.HandleFunc(p+"v1/send_knock/{roomId}/{eventId}", a.sendKnock).Methods(http.MethodPut)
	r.HandleFunc(p+"v2/invite/{roomId}/{eventId}", a.putInvite(false)).Methods(http.MethodPut)
	r.HandleFunc(p+"v1/invite/{roomId}/{eventId}", a.putInvite(true)).Methods(http.MethodPut)
}

// makeMembership implements GET make_join, make_leave and make_knock: the
// template of the origin's user's membership event, built on the room's
// current state. 404 for a room this server is not in, 400
// M_INCOMPATIBLE_ROOM_VERSION when the origin does not support the room's
// version (make_join, make_knock), 403 when the auth rules would refuse
// the event or the room's ACL denies the origin.
func (a *API) makeMembership(membership string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		roomID, userID := httputil.PathVar(r, "roomId"), httputil.PathVar(r, "userId")
		ver, err := a.residentRoom(r, roomID, userID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if membership != "leave" {
			supported := r.URL.Query()["ver"]
			if len(supported) == 0 {
				supported = []string{"1"} // the spec's default
			}
			if !slices.Contains(supported, ver.ID) {
				httputil.WriteJSON(w, r, http.StatusBadRequest, map[string]string{"errcode": codeIncompatibleRoomVersion,
					"error": "the room has version " + ver.ID + ", which the joining server did not list", "room_version": ver.ID})
				return
			}
		}
		if membership == "knock" && !ver.Knocking {
			httputil.WriteError(w, r, httputil.Forbidden("room version "+ver.ID+" does not support knocking"))
			return
		}
		content := map[string]any{"membership": membership}
		if membership == "join" {
			by, err := a.rs.RestrictedJoinAuthoriser(ctx, roomID, userID)
			if errors.Is(err, roomserver.ErrCannotAuthoriseJoin) {
				httputil.WriteError(w, r, httputil.NewError(http.StatusBadRequest, codeUnableToGrantJoin, err.Error()))
				return
			}
			if err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			if by != "" {
				content["join_authorised_via_users_server"] = by
			}
		}
		raw, _ := json.Marshal(content)
		ev, err := a.rs.BuildEvent(ctx, roomID, roomserver.EventRequest{Type: "m.room.member", StateKey: &userID, Sender: userID, Content: raw})
		if err != nil {
			httputil.WriteError(w, r, handshakeError(err))
			return
		}
		template, err := templateOf(ev)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"room_version": ver.ID, "event": template})
	}
}

// residentRoom checks a handshake request about userID in roomID: the user
// must belong to the origin, this server must be in the room and the
// room's ACL must allow the origin. It returns the room's version.
func (a *API) residentRoom(r *http.Request, roomID, userID string) (*pdu.RoomVersion, error) {
	ctx := r.Context()
	if !strings.HasPrefix(userID, "@") || pdu.DomainOf(userID) != Origin(ctx) {
		return nil, httputil.Forbidden(fmt.Sprintf("user %q does not belong to server %s", userID, Origin(ctx)))
	}
	ver, err := a.rs.RoomVersion(ctx, roomID)
	if err != nil {
		return nil, notFoundRoom(err, roomID)
	}
	joined, err := a.rs.ServerJoined(ctx, roomID, a.cfg.ServerName)
	if err != nil {
		return nil, err
	}
	if !joined {
		return nil, httputil.NotFound("this server is not in room " + roomID)
	}
	if err := a.checkACL(r, roomID); err != nil {
		return nil, err
	}
	return ver, nil
}

// templateOf is the event as a make_* template: without the hashes,
// signatures and (v1–v2) event ID that the other server makes its own.
func templateOf(ev *pdu.Event) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(ev.JSON(), &fields); err != nil {
		return nil, err
	}
	for _, k := range []string{"hashes", "signatures", "event_id", "unsigned"} {
		delete(fields, k)
	}
	return fields, nil
}

// handshakeError maps the roomserver's refusals to the handshake's errors.
func handshakeError(err error) error {
	if _, ok := errors.AsType[*roomserver.BadRequestError](err); ok {
		return httputil.BadJSON(err.Error())
	}
	if errors.Is(err, roomserver.ErrRoomNotFound) {
		return httputil.NotFound(err.Error())
	}
	if _, ok := errors.AsType[*rsauth.NotAllowedError](err); ok {
		return httputil.Forbidden(err.Error())
	}
	return err
}

// receiveMembership reads the body of send_join, send_leave or send_knock:
// the origin's user's signed membership event for the room, with the
// event ID of the path. It is put through the input path; an event the
// auth rules refuse or soft-fail gets 403.
func (a *API) receiveMembership(r *http.Request, membership string) (*pdu.Event, *pdu.RoomVersion, error) {
	ctx := r.Context()
	roomID, eventID := httputil.PathVar(r, "roomId"), httputil.PathVar(r, "eventId")
	raw, err := httputil.ReadBody(r)
	if err != nil {
		return nil, nil, err
	}
	sender := gjson.GetBytes(raw, "sender").Str
	ver, err := a.residentRoom(r, roomID, sender)
	if err != nil {
		return nil, nil, err
	}
	ev, err := pdu.ParseEvent(raw, ver)
	if err != nil {
		return nil, nil, httputil.BadJSON(err.Error())
	}
	switch {
	case ev.EventID() != eventID:
		return nil, nil, httputil.BadJSON(fmt.Sprintf("the event's ID is %s, not %s", ev.EventID(), eventID))
	case ev.RoomID() != roomID:
		return nil, nil, httputil.BadJSON("the event is for room " + ev.RoomID())
	case ev.Type() != "m.room.member" || ev.Membership() != membership:
		return nil, nil, httputil.BadJSON("the event is not an m.room.member event with membership " + membership)
	case ev.StateKey() == nil || *ev.StateKey() != ev.Sender():
		return nil, nil, httputil.BadJSON("the event's state_key is not its sender")
	}
	if membership == "join" {
		// A restricted join names one of our users; our signature must be
		// on it before anyone stores it.
		if by := gjson.GetBytes(ev.Content(), "join_authorised_via_users_server").Str; by != "" && pdu.DomainOf(by) == a.cfg.ServerName {
			keyID, key := a.keys.Current()
			if ev, err = ev.AddSignature(a.cfg.ServerName, keyID, key); err != nil {
				return nil, nil, err
			}
		}
	}
	results, err := a.rs.InputReceived(ctx, roomID, []*pdu.Event{ev})
	if err != nil {
		return nil, nil, handshakeError(err)
	}
	res := results[0]
	switch {
	case res.Dropped != nil:
		return nil, nil, httputil.BadJSON("the event was not accepted: " + res.Dropped.Error())
	case res.Rejected != nil:
		return nil, nil, httputil.Forbidden("the event fails the auth rules: " + res.Rejected.Error())
	case res.SoftFailed:
		return nil, nil, httputil.Forbidden("the event is not allowed by the room's current state")
	}
	return ev, ver, nil
}

// sendJoin implements PUT send_join (v1 with legacy, v2 otherwise): the
// room state before the join and the auth chain, or with omit_members the
// state without the members (but the heroes) and the auth chain of what
// is sent.
func (a *API) sendJoin(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ev, _, err := a.receiveMembership(r, "join")
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		recs, err := a.db.EventsByID(ctx, []string{ev.EventID()})
		if err != nil || len(recs) == 0 {
			httputil.WriteError(w, r, fmt.Errorf("the join %s is not stored: %v", ev.EventID(), err))
			return
		}
		state, err := a.db.SnapshotEvents(ctx, recs[0].StateBeforeNID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		omit := !legacy && r.URL.Query().Get("omit_members") == "true"
		resp := map[string]any{"origin": a.cfg.ServerName}
		if omit {
			servers, err := a.rs.JoinedServersAt(ctx, recs[0].StateBeforeNID)
			if err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			state = withoutMembers(state, ev.Sender())
			resp["members_omitted"] = true
			resp["servers_in_room"] = servers
		}
		chain, err := a.authChainCtx(r, append(slices.Clone(state), recs[0]))
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if resp["state"], err = federationJSON(state); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if resp["auth_chain"], err = federationJSON(chain); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		resp["event"] = json.RawMessage(ev.JSON())
		if legacy {
			httputil.WriteJSON(w, r, http.StatusOK, []any{200, resp})
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, resp)
	}
}

// withoutMembers drops the m.room.member events from state, except, when
// the room has neither a name nor a canonical alias, those of the heroes a
// client would name it after (up to 5 joined or invited members other
// than the joining user), as joins-v2.yaml asks.
func withoutMembers(state []*storage.EventRecord, joiner string) []*storage.EventRecord {
	named := slices.ContainsFunc(state, func(e *storage.EventRecord) bool {
		return (e.Type == "m.room.name" && gjson.GetBytes(e.JSON, "content.name").Str != "") ||
			(e.Type == "m.room.canonical_alias" && gjson.GetBytes(e.JSON, "content.alias").Str != "")
	})
	heroes := 0
	out := state[:0:0]
	for _, e := range state {
		if e.Type == "m.room.member" {
			isHero := !named && heroes < 5 && e.StateKey != nil && *e.StateKey != joiner && (e.Membership == "join" || e.Membership == "invite")
			if !isHero {
				continue
			}
			heroes++
		}
		out = append(out, e)
	}
	return out
}

// sendLeave implements PUT send_leave (v1 with legacy, v2 otherwise).
func (a *API) sendLeave(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := a.receiveMembership(r, "leave"); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if legacy {
			httputil.WriteJSON(w, r, http.StatusOK, []any{200, struct{}{}})
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
	}
}

// sendKnock implements PUT /v1/send_knock: the room's stripped state for
// the knocking user's client.
func (a *API) sendKnock(w http.ResponseWriter, r *http.Request) {
	ev, _, err := a.receiveMembership(r, "knock")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	stripped, err := a.rs.StrippedState(r.Context(), ev.RoomID())
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"knock_room_state": stripped})
}

// inviteBody is the body of PUT /v2/invite.
type inviteBody struct {
	RoomVersion     string            `json:"room_version"`
	Event           json.RawMessage   `json:"event"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// putInvite implements PUT invite (v1 with legacy, where the body is the
// event itself, v2 otherwise): an invite of one of our users by a user of
// the origin. We countersign it and keep it for the user's /sync: through
// the input path when this server is in the room, else out of band with
// the room's stripped state.
func (a *API) putInvite(legacy bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		roomID, eventID := httputil.PathVar(r, "roomId"), httputil.PathVar(r, "eventId")
		raw, err := httputil.ReadBody(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		var body inviteBody
		if legacy {
			body.Event = raw
			body.RoomVersion = "1"
			if v, err := a.rs.RoomVersion(ctx, roomID); err == nil {
				body.RoomVersion = v.ID
			}
			for _, s := range gjson.GetBytes(raw, "unsigned.invite_room_state").Array() {
				body.InviteRoomState = append(body.InviteRoomState, json.RawMessage(s.Raw))
			}
		} else if err := json.Unmarshal(raw, &body); err != nil {
			httputil.WriteError(w, r, httputil.BadJSON("the body is not an invite request: "+err.Error()))
			return
		}
		ver, err := pdu.GetRoomVersion(body.RoomVersion)
		if err != nil {
			httputil.WriteJSON(w, r, http.StatusBadRequest, map[string]string{"errcode": codeIncompatibleRoomVersion,
				"error": "room version " + body.RoomVersion + " is not supported here", "room_version": body.RoomVersion})
			return
		}
		ev, err := pdu.ParseEvent(body.Event, ver)
		if err != nil {
			httputil.WriteError(w, r, httputil.BadJSON(err.Error()))
			return
		}
		if err := a.checkInvite(ctx, ev, roomID, eventID); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if ver.CreateEventIsRoomID {
			// Required from v12 (invites-v2.yaml), optional before:
			// servers of older versions send stripped events.
			if err := a.checkInviteRoomState(ctx, ver, roomID, body.InviteRoomState); err != nil {
				httputil.WriteError(w, r, err)
				return
			}
		}
		keyID, key := a.keys.Current()
		signed, err := ev.AddSignature(a.cfg.ServerName, keyID, key)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if err := a.keepInvite(r, signed, body.InviteRoomState); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if legacy {
			httputil.WriteJSON(w, r, http.StatusOK, []any{200, map[string]json.RawMessage{"event": signed.JSON()}})
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, map[string]json.RawMessage{"event": signed.JSON()})
	}
}

// checkInvite checks an invite event from the origin: one of our users
// (with an account) invited by one of the origin's, in the path's room,
// with the path's event ID.
func (a *API) checkInvite(ctx context.Context, ev *pdu.Event, roomID, eventID string) error {
	origin := Origin(ctx)
	switch {
	case ev.EventID() != eventID:
		return httputil.BadJSON(fmt.Sprintf("the event's ID is %s, not %s", ev.EventID(), eventID))
	case ev.RoomID() != roomID:
		return httputil.BadJSON("the event is for room " + ev.RoomID())
	case ev.Type() != "m.room.member" || ev.Membership() != "invite" || ev.StateKey() == nil:
		return httputil.BadJSON("the event is not an invite")
	case pdu.DomainOf(ev.Sender()) != origin:
		return httputil.Forbidden("the inviter does not belong to server " + origin)
	case pdu.DomainOf(*ev.StateKey()) != a.cfg.ServerName:
		return httputil.BadJSON("the invited user does not belong to this server")
	}
	local := strings.TrimPrefix(*ev.StateKey(), "@")
	local, _, _ = strings.Cut(local, ":")
	if _, err := a.db.GetAccount(ctx, local); errors.Is(err, storage.ErrNotFound) {
		return httputil.NotFound("no user " + *ev.StateKey() + " here")
	} else if err != nil {
		return err
	}
	return nil
}

// checkInviteRoomState applies invites-v2.yaml's checks to the room state
// sent with an invite: it holds the room's m.room.create event, and every
// event is a PDU of the room's version, of the room, correctly signed.
func (a *API) checkInviteRoomState(ctx context.Context, ver *pdu.RoomVersion, roomID string, state []json.RawMessage) error {
	hasCreate := false
	for i, raw := range state {
		ev, err := pdu.ParseEvent(raw, ver)
		if err != nil {
			return httputil.InvalidParam(fmt.Sprintf("invite_room_state[%d]: %v", i, err))
		}
		evRoom := ev.RoomID()
		if ev.Type() == "m.room.create" && ev.StateKeyEquals("") {
			hasCreate = true
			if ver.CreateEventIsRoomID {
				evRoom = pdu.RoomIDFromCreateEventID(ev.EventID())
			}
		}
		if evRoom != roomID {
			return httputil.InvalidParam(fmt.Sprintf("invite_room_state[%d] is not of room %s", i, roomID))
		}
		if _, err := a.rs.CheckSignatures(ctx, ev); err != nil {
			return httputil.InvalidParam(fmt.Sprintf("invite_room_state[%d]: %v", i, err))
		}
	}
	if !hasCreate {
		return httputil.InvalidParam("invite_room_state lacks the room's m.room.create event")
	}
	return nil
}

// keepInvite stores a countersigned invite: through the input path when
// this server is in the room (the inviter sends it with /send too, and a
// duplicate is harmless), else out of band, carrying the room's stripped
// state for the invited user's client.
func (a *API) keepInvite(r *http.Request, ev *pdu.Event, stripped []json.RawMessage) error {
	ctx := r.Context()
	joined, err := a.rs.ServerJoined(ctx, ev.RoomID(), a.cfg.ServerName)
	if err != nil && !errors.Is(err, roomserver.ErrRoomNotFound) {
		return err
	}
	if joined {
		if err := a.checkACL(r, ev.RoomID()); err != nil {
			return err
		}
		results, err := a.rs.InputReceived(ctx, ev.RoomID(), []*pdu.Event{ev})
		if err != nil {
			return err
		}
		switch res := results[0]; {
		case res.Rejected != nil:
			return httputil.Forbidden("the invite fails the auth rules: " + res.Rejected.Error())
		case res.SoftFailed:
			return httputil.Forbidden("the invite is not allowed by the room's current state")
		case res.Output != nil || res.Duplicate:
			return nil
		}
		// Dropped (events we lack before it): keep it out of band; the
		// room's own copy arrives with /send.
	}
	if _, err := a.rs.StoreOutOfBand(ctx, ev, stripped); err != nil && !errors.Is(err, roomserver.ErrDuplicate) {
		return handshakeError(err)
	}
	return nil
}
