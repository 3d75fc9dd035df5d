package clientapi

// Room membership (client-server-api "Room membership", "Joining rooms",
// "Knocking on rooms", "Leaving rooms", "Banning users in a room"):
// POST /join/{roomIdOrAlias}, /knock/{roomIdOrAlias}, /rooms/{roomId}/join,
// invite, leave, forget, kick, ban, unban, and GET /joined_rooms.
//
// Every change is an m.room.member event sent through the roomserver by
// changeMembership; the auth rules decide who may do what, and their
// reason is the M_FORBIDDEN message.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerMembership(r *mux.Router) {
	r.HandleFunc(v3Prefix+"join/{roomIdOrAlias}", a.auth.Required(a.postJoinAlias)).Methods(http.MethodPost)
	r.HandleFunc(v3Prefix+"knock/{roomIdOrAlias}", a.auth.Required(a.postKnock)).Methods(http.MethodPost)
	const p = v3Prefix + "rooms/{roomId}/"
	r.HandleFunc(p+"join", a.auth.Required(a.postJoinRoom)).Methods(http.MethodPost)
	r.HandleFunc(p+"leave", a.auth.Required(a.postLeave)).Methods(http.MethodPost)
	r.HandleFunc(p+"forget", a.auth.Required(a.postForget)).Methods(http.MethodPost)
	for _, action := range []string{"invite", "kick", "ban", "unban"} {
		r.HandleFunc(p+action, a.auth.Required(a.targetedMembership(action))).Methods(http.MethodPost)
	}
	r.HandleFunc(v3Prefix+"joined_rooms", a.auth.Required(a.getJoinedRooms)).Methods(http.MethodGet)
}

// membershipBody is the body of the membership endpoints. user_id is read
// only by those that name a target (invite, kick, ban, unban).
type membershipBody struct {
	UserID *string `json:"user_id"`
	Reason *string `json:"reason"`
	// ThirdPartySigned (join with a third-party invite) needs identity
	// servers, which this server does not support.
	ThirdPartySigned json.RawMessage `json:"third_party_signed"`
}

// readMembershipBody reads the optional body: clients often send none to
// /join and /leave, as Synapse allows, but what is sent must be a JSON
// object of the right shape.
func readMembershipBody(r *http.Request) (*membershipBody, error) {
	raw, err := httputil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var b membershipBody
	if len(strings.TrimSpace(string(raw))) == 0 {
		return &b, nil
	}
	// The body was read to see whether there is one; ReadJSONObject
	// checks what there is as for every other endpoint.
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if _, err := readObjectInto(r, &b); err != nil {
		return nil, err
	}
	if len(b.ThirdPartySigned) > 0 && string(b.ThirdPartySigned) != "null" {
		return nil, httputil.NewError(http.StatusBadRequest, httputil.CodeUnrecognized, "third_party_signed is not supported by this server")
	}
	return &b, nil
}

// postJoinAlias implements POST /join/{roomIdOrAlias}.
func (a *API) postJoinAlias(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	a.join(w, r, d, httputil.PathVar(r, "roomIdOrAlias"), "join")
}

// postJoinRoom implements POST /rooms/{roomId}/join.
func (a *API) postJoinRoom(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.join(w, r, d, roomID, "join")
}

// join joins the user to a room, or knocks on it (membership "knock"):
// the same request, resolved the same way and rate limited together.
func (a *API) join(w http.ResponseWriter, r *http.Request, d *auth.Device, roomIDOrAlias, membership string) {
	body, err := readMembershipBody(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	roomID, hints, err := a.resolveRoom(ctx, roomIDOrAlias, r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.limits.Join.Check(d.UserID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	content := memberContent(membership, a.memberProfileOf(ctx, d.UserID), false)
	inRoom, err := a.serverInRoom(ctx, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !inRoom {
		if body.Reason != nil {
			content["reason"] = *body.Reason
		}
		servers := a.residentServers(ctx, roomID, d.UserID, hints)
		if err := a.remoteMembership(ctx, roomID, d.UserID, membership, content, servers); err != nil {
			httputil.WriteError(w, r, roomError(err))
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"room_id": roomID})
		return
	}
	if membership == "join" {
		if err := a.authoriseRestrictedJoin(ctx, roomID, d.UserID, content); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	if _, err := a.changeMembership(ctx, roomID, d.UserID, d.UserID, content, body.Reason); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"room_id": roomID})
}

// postKnock implements POST /knock/{roomIdOrAlias}.
func (a *API) postKnock(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	a.join(w, r, d, httputil.PathVar(r, "roomIdOrAlias"), "knock")
}

// postLeave implements POST /rooms/{roomId}/leave: leaving, rejecting an
// invite or retracting a knock.
func (a *API) postLeave(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := readMembershipBody(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	inRoom, err := a.serverInRoom(ctx, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if !inRoom {
		// Rejecting an invite or retracting a knock in a room this server
		// is not in goes through the server that sent it.
		if m, err := a.rs.Membership(ctx, roomID, d.UserID); err == nil && (m == "invite" || m == "knock") {
			content := map[string]any{"membership": "leave"}
			if body.Reason != nil {
				content["reason"] = *body.Reason
			}
			if err := a.remoteMembership(ctx, roomID, d.UserID, "leave", content, a.residentServers(ctx, roomID, d.UserID, nil)); err != nil {
				httputil.WriteError(w, r, roomError(err))
				return
			}
			httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
			return
		}
	}
	if _, err := a.changeMembership(ctx, roomID, d.UserID, d.UserID, map[string]any{"membership": "leave"}, body.Reason); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}

// postForget implements POST /rooms/{roomId}/forget. As in Synapse, a
// user still joined, invited or knocking gets 400 M_UNKNOWN, and a user
// who was never in the room succeeds without effect.
func (a *API) postForget(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if _, err := readMembershipBody(r); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if _, err := a.db.Room(ctx, roomID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = httputil.NotFound("room not found")
		}
		httputil.WriteError(w, r, err)
		return
	}
	membership, err := a.rs.Membership(ctx, roomID, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	switch membership {
	case "":
	case "leave", "ban":
		if err := a.db.ForgetRoom(ctx, d.UserID, roomID); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	default:
		httputil.WriteError(w, r, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown,
			fmt.Sprintf("user %s is in room %s (membership %s): leave it first", d.UserID, roomID, membership)))
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}

// targetedMembership implements POST /rooms/{roomId}/invite, kick, ban and
// unban, which change another user's membership.
func (a *API) targetedMembership(action string) func(http.ResponseWriter, *http.Request, *auth.Device) {
	return func(w http.ResponseWriter, r *http.Request, d *auth.Device) {
		roomID, err := roomIDVar(r)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		var req membershipBody
		if _, err := readObjectInto(r, &req); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if req.UserID == nil {
			httputil.WriteError(w, r, httputil.MissingParam(`"user_id" is required`))
			return
		}
		target := *req.UserID
		if err := checkUserID(target); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		ctx := r.Context()
		var content map[string]any
		switch action {
		case "invite":
			if err := a.checkLocalUserExists(ctx, target); err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			content = memberContent("invite", a.memberProfileOf(ctx, target), false)
			if pdu.DomainOf(target) != a.cfg.ServerName {
				a.inviteRemote(w, r, roomID, d.UserID, target, content, req.Reason)
				return
			}
		case "ban":
			content = map[string]any{"membership": "ban"}
		case "kick", "unban":
			// Both set the target's membership to leave; each needs the
			// target in the state it undoes (kicking.yaml: "The kickee is
			// not currently in the room"; Synapse refuses to unban a user
			// who is not banned with M_BAD_STATE).
			current, err := a.rs.Membership(ctx, roomID, target)
			if err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			if action == "unban" && current != "ban" {
				if err := a.checkRoomExists(ctx, roomID); err != nil {
					httputil.WriteError(w, r, err)
					return
				}
				httputil.WriteError(w, r, httputil.NewError(http.StatusForbidden, httputil.CodeBadState,
					fmt.Sprintf("cannot unban %s, who is not banned (membership %q)", target, current)))
				return
			}
			if action == "kick" && current != "join" && current != "invite" && current != "knock" {
				if err := a.checkRoomExists(ctx, roomID); err != nil {
					httputil.WriteError(w, r, err)
					return
				}
				httputil.WriteError(w, r, httputil.Forbidden(fmt.Sprintf("%s is not in the room", target)))
				return
			}
			content = map[string]any{"membership": "leave"}
		}
		if _, err := a.changeMembership(ctx, roomID, d.UserID, target, content, req.Reason); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
	}
}

// changeMembership sends an m.room.member event by sender about target
// with content (plus reason when given) and returns its event ID. A change
// that changes nothing (repeating an invite or a join) sends nothing; see
// sendState.
func (a *API) changeMembership(ctx context.Context, roomID, sender, target string, content map[string]any, reason *string) (string, error) {
	if reason != nil {
		content["reason"] = *reason
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return "", err
	}
	return a.sendState(ctx, roomID, sender, "m.room.member", target, raw)
}

// sameJSON reports whether two JSON values are equal as values.
func sameJSON(x, y []byte) bool {
	var vx, vy any
	if json.Unmarshal(x, &vx) != nil || json.Unmarshal(y, &vy) != nil {
		return false
	}
	return reflect.DeepEqual(vx, vy)
}

// resolveRoom turns the {roomIdOrAlias} of /join and /knock into a room
// ID, and the servers that may be asked about it (via and server_name,
// and for an alias the servers its server listed). A room this server
// does not know is only an error without federation.
func (a *API) resolveRoom(ctx context.Context, roomIDOrAlias string, r *http.Request) (string, []string, error) {
	var roomID string
	var servers []string
	q := r.URL.Query()
	// via (and server_name, its older name) name servers in the room.
	for _, s := range append(q["via"], q["server_name"]...) {
		if config.ValidServerName(s) != nil {
			return "", nil, httputil.InvalidParam("invalid server name " + quoteID(s) + " in via")
		}
		servers = append(servers, s)
	}
	switch {
	case strings.HasPrefix(roomIDOrAlias, "#"):
		id, aliasServers, err := a.resolveAliasServers(ctx, roomIDOrAlias)
		if err != nil {
			return "", nil, err
		}
		roomID = id
		servers = append(servers, aliasServers...)
	case strings.HasPrefix(roomIDOrAlias, "!"):
		if err := checkRoomID(roomIDOrAlias); err != nil {
			return "", nil, err
		}
		roomID = roomIDOrAlias
	default:
		return "", nil, httputil.InvalidParam(quoteID(roomIDOrAlias) + " is not a room ID or a room alias")
	}
	if a.federation == nil {
		if err := a.checkRoomExists(ctx, roomID); err != nil {
			return "", nil, notOnThisServer(roomID)
		}
	}
	return roomID, servers, nil
}

// checkRoomExists returns 404 M_NOT_FOUND for a room this server does not
// have.
func (a *API) checkRoomExists(ctx context.Context, roomID string) error {
	_, err := a.db.Room(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return httputil.NotFound("room not found")
	}
	return err
}

// checkLocalUserExists refuses (404 M_NOT_FOUND) a local user ID without
// an account; remote users cannot be checked without federation.
func (a *API) checkLocalUserExists(ctx context.Context, userID string) error {
	local, server, _ := strings.Cut(userID[1:], ":")
	if server != a.cfg.ServerName {
		return nil
	}
	_, err := a.db.GetAccount(ctx, local)
	if errors.Is(err, storage.ErrNotFound) {
		return httputil.NotFound("user " + userID + " does not exist")
	}
	return err
}

// authoriseRestrictedJoin names, in a join's content, the local member
// who vouches for it when the room is restricted and the user qualifies
// (roomserver.RestrictedJoinAuthoriser); otherwise the content is left
// alone and the auth rules decide.
func (a *API) authoriseRestrictedJoin(ctx context.Context, roomID, userID string, content map[string]any) error {
	by, err := a.rs.RestrictedJoinAuthoriser(ctx, roomID, userID)
	if errors.Is(err, roomserver.ErrCannotAuthoriseJoin) {
		return httputil.Forbidden(err.Error())
	}
	if err != nil {
		return roomError(err)
	}
	if by != "" {
		content["join_authorised_via_users_server"] = by
	}
	return nil
}

// getJoinedRooms implements GET /joined_rooms.
func (a *API) getJoinedRooms(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	rooms, err := a.rs.RoomsForUser(r.Context(), d.UserID, "join")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if rooms == nil {
		rooms = []string{}
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string][]string{"joined_rooms": rooms})
}
