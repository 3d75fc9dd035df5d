package clientapi

// Rooms on other servers: when this server is not in a room, joining,
// knocking on or leaving it goes through a server that is (the
// membership handshakes of the Server-Server API), and so does inviting a
// user of another server. The Federation dependency does the talking;
// this file decides when it is needed and whom to ask.

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Federation is what the client API asks of other servers
// (federation/handshake implements it). Its errors are *httputil.Error
// values to answer with.
type Federation interface {
	Join(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error
	Knock(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error
	Leave(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error
	Invite(ctx context.Context, roomID, sender, target string, content map[string]any) (string, error)
	QueryAlias(ctx context.Context, alias string) (roomID string, servers []string, err error)
	// Hierarchy asks one of servers about a space room it holds: the
	// room and its children (federation /hierarchy).
	Hierarchy(ctx context.Context, roomID string, servers []string, suggestedOnly bool) (*roomserver.SpaceRoom, []roomserver.SpaceRoom, error)
	// PublicRooms lists a page of another server's published room
	// directory.
	PublicRooms(ctx context.Context, server string, q roomserver.PublicRoomsQuery) (*roomserver.PublicRoomsPage, error)
}

// serverInRoom reports whether a user of this server is joined to the
// room, so that this server can build the room's events itself.
func (a *API) serverInRoom(ctx context.Context, roomID string) (bool, error) {
	joined, err := a.rs.ServerJoined(ctx, roomID, a.cfg.ServerName)
	if errors.Is(err, roomserver.ErrRoomNotFound) {
		return false, nil
	}
	return joined, err
}

// residentServers lists the servers to ask about a room this server is
// not in, best first: those the client named (via, server_name) or the
// alias's server listed, the server of whoever invited the user (or
// answered their knock), and the server in the room's ID (versions before
// 12).
func (a *API) residentServers(ctx context.Context, roomID, userID string, hints []string) []string {
	servers := slices.Clone(hints)
	if ev, err := a.rs.MembershipEvent(ctx, roomID, userID); err == nil && ev != nil {
		servers = append(servers, pdu.DomainOf(ev.Sender()))
	}
	if d := pdu.DomainOf(roomID); d != "" {
		servers = append(servers, d)
	}
	out := servers[:0]
	for _, s := range servers {
		if s != "" && s != a.cfg.ServerName && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// remoteMembership joins, knocks on or leaves a room this server is not
// in, through the servers given.
func (a *API) remoteMembership(ctx context.Context, roomID, userID, membership string, content map[string]any, servers []string) error {
	if a.federation == nil {
		return notOnThisServer(roomID)
	}
	switch membership {
	case "join":
		return a.federation.Join(ctx, roomID, userID, content, servers)
	case "knock":
		return a.federation.Knock(ctx, roomID, userID, content, servers)
	default:
		return a.federation.Leave(ctx, roomID, userID, content, servers)
	}
}

func notOnThisServer(roomID string) error {
	return httputil.NotFound("room " + roomID + " is not known to this server")
}

// resolveAliasServers returns the room an alias names and the servers
// to join it through: this server's own aliases from the database, other
// servers' by asking them.
func (a *API) resolveAliasServers(ctx context.Context, alias string) (string, []string, error) {
	_, server, err := parseAlias(alias)
	if err != nil {
		return "", nil, err
	}
	if server != a.cfg.ServerName && a.federation != nil {
		return a.federation.QueryAlias(ctx, alias)
	}
	roomID, err := a.resolveAlias(ctx, alias)
	return roomID, nil, err
}

// inviteRemote invites a user of another server, whose server must
// countersign the invite, and answers the request.
func (a *API) inviteRemote(w http.ResponseWriter, r *http.Request, roomID, sender, target string, content map[string]any, reason *string) {
	if a.federation == nil {
		httputil.WriteError(w, r, httputil.Forbidden("this server cannot invite users of other servers"))
		return
	}
	ctx := r.Context()
	if reason != nil {
		content["reason"] = *reason
	}
	if m, err := a.rs.Membership(ctx, roomID, target); err != nil {
		httputil.WriteError(w, r, roomError(err))
		return
	} else if m == "invite" || m == "join" {
		// As for local users: repeating an invite (or inviting a member)
		// changes nothing.
		if m == "join" {
			httputil.WriteError(w, r, httputil.Forbidden(target+" is already in the room"))
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
		return
	}
	if _, err := a.federation.Invite(ctx, roomID, sender, target, content); err != nil {
		httputil.WriteError(w, r, roomError(err))
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, struct{}{})
}
