package clientapi

// POST /createRoom (client-server-api "Creation", create_room.yaml). The
// events a request implies are worked out by planCreateRoom
// (createroom_plan.go); this file carries the plan out.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	rsauth "github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// codeInvalidRoomState is create_room.yaml's error for an initial state the
// auth rules refuse (e.g. power levels that keep the creator from setting
// the name).
const codeInvalidRoomState = "M_INVALID_ROOM_STATE"

func (a *API) registerCreateRoom(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/createRoom", a.auth.Required(a.postCreateRoom)).Methods(http.MethodPost)
}

// postCreateRoom implements POST /createRoom.
func (a *API) postCreateRoom(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req createRoomRequest
	if _, err := readObjectInto(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	plan, err := planCreateRoom(&req, d.UserID, a.cfg.ServerName, func(u string) memberProfile {
		return a.memberProfileOf(ctx, u)
	})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	roomID, err := a.createRoom(ctx, d.UserID, plan)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]string{"room_id": roomID})
}

// createRoom creates the room a plan describes, for POST /createRoom and
// room upgrades: the alias is reserved first (so that a taken alias refuses
// the request before anything is written), the room and all its initial
// events are stored in one roomserver transaction, then the alias points
// at the room and the room is published if asked. A refused room leaves
// nothing behind.
func (a *API) createRoom(ctx context.Context, creator string, plan *createRoomPlan) (string, error) {
	if plan.Alias != "" {
		err := a.db.ReserveAlias(ctx, plan.Alias, creator)
		if errors.Is(err, storage.ErrAliasExists) {
			return "", httputil.NewError(http.StatusBadRequest, httputil.CodeRoomInUse, "room alias "+plan.Alias+" is already taken")
		}
		if err != nil {
			return "", err
		}
	}
	// Invites of users of other servers need their servers' countersignature
	// (the invite handshake): they are sent once the room exists.
	var initial []roomserver.EventRequest
	var remoteInvites []plannedEvent
	for _, ev := range plan.Events {
		if ev.Type == "m.room.member" && pdu.DomainOf(ev.StateKey) != a.cfg.ServerName &&
			gjson.GetBytes(ev.Content, "membership").Str == "invite" {
			remoteInvites = append(remoteInvites, ev)
			continue
		}
		sk := ev.StateKey
		initial = append(initial, roomserver.EventRequest{Type: ev.Type, StateKey: &sk, Sender: creator, Content: ev.Content})
	}
	roomID, _, err := a.rs.CreateRoom(ctx, roomserver.CreateRoomRequest{
		Creator:         creator,
		Version:         plan.Version,
		CreationContent: plan.CreationContent,
		Initial:         initial,
	})
	if err != nil {
		if plan.Alias != "" {
			if rerr := a.db.ReleaseAlias(context.WithoutCancel(ctx), plan.Alias); rerr != nil {
				httputil.Logger(ctx).WarnContext(ctx, "cannot release a reserved alias; it expires by itself", "alias", plan.Alias, "err", rerr)
			}
		}
		var na *rsauth.NotAllowedError
		if errors.As(err, &na) {
			return "", httputil.NewError(http.StatusBadRequest, codeInvalidRoomState, "the initial state is not allowed: "+na.Reason)
		}
		return "", roomError(err)
	}
	// The room exists from here on: finish even if the client went away.
	ctx = context.WithoutCancel(ctx)
	if plan.Alias != "" {
		if err := a.db.CompleteAlias(ctx, plan.Alias, roomID); err != nil {
			return "", err
		}
	}
	if plan.Publish {
		if err := a.db.SetRoomPublished(ctx, roomID, true); err != nil {
			return "", err
		}
	}
	a.inviteRemoteMembers(ctx, roomID, creator, remoteInvites)
	return roomID, nil
}

// inviteRemoteMembers sends a new room's invites of users of other
// servers. The room exists whatever becomes of them, so a failure (the
// server unreachable, or refusing) is logged, as Synapse does, and the
// creator may invite again.
func (a *API) inviteRemoteMembers(ctx context.Context, roomID, creator string, invites []plannedEvent) {
	for _, ev := range invites {
		err := errors.New("this server cannot invite users of other servers")
		if a.federation != nil {
			var content map[string]any
			if err = json.Unmarshal(ev.Content, &content); err == nil {
				_, err = a.federation.Invite(ctx, roomID, creator, ev.StateKey, content)
			}
		}
		if err != nil {
			httputil.Logger(ctx).WarnContext(ctx, "inviting a user of another server to a new room", "room_id", roomID, "user_id", ev.StateKey, "err", err)
		}
	}
}
