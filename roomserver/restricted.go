package roomserver

import (
	"context"
	"errors"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// ErrCannotAuthoriseJoin: the user may join the restricted room, but no
// user of this server in it has the power to invite, so this server cannot
// vouch for the join (M_UNABLE_TO_GRANT_JOIN over federation).
var ErrCannotAuthoriseJoin = errors.New("no member of this server can authorise joining this restricted room")

// RestrictedJoinAuthoriser prepares a join of userID to a room with the
// join rule restricted or knock_restricted (client-server-api "Restricted
// rooms"). It returns the user of this server to name in the join's
// join_authorised_via_users_server: when the user is neither joined nor
// invited but is joined to one of the rooms the rule's "allow" lists (as
// far as this server knows), the local member with the most power among
// those who may invite. It returns "" when the join needs no authoriser or
// no condition holds (the auth rules then refuse the join), and
// ErrCannotAuthoriseJoin when a condition holds but no local member can
// invite.
func (rs *Roomserver) RestrictedJoinAuthoriser(ctx context.Context, roomID, userID string) (string, error) {
	ver, err := rs.RoomVersion(ctx, roomID)
	if err != nil || !ver.RestrictedJoins {
		return "", err
	}
	jr, err := rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.join_rules"})
	if err != nil || jr == nil {
		return "", err
	}
	rule := gjson.GetBytes(jr.Content(), "join_rule").Str
	if rule != "restricted" && !(rule == "knock_restricted" && ver.KnockRestricted) {
		return "", nil
	}
	if m, err := rs.Membership(ctx, roomID, userID); err != nil || m == "join" || m == "invite" {
		return "", err
	}
	allowed := false
	for _, cond := range gjson.GetBytes(jr.Content(), "allow").Array() {
		if cond.Get("type").Str != "m.room_membership" {
			continue
		}
		m, err := rs.Membership(ctx, cond.Get("room_id").Str, userID)
		if err != nil && !errors.Is(err, ErrRoomNotFound) {
			return "", err
		}
		if m == "join" {
			allowed = true
			break
		}
	}
	if !allowed {
		return "", nil
	}
	create, err := rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.create"})
	if err != nil {
		return "", err
	}
	pl, err := rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.power_levels"})
	if err != nil {
		return "", err
	}
	levels, err := auth.PowerLevelsFromState(create, pl)
	if err != nil {
		return "", err
	}
	members, err := rs.JoinedMembers(ctx, roomID)
	if err != nil {
		return "", err
	}
	// The most powerful: the least likely to lose the power soon.
	best, bestLevel := "", int64(0)
	for _, m := range members {
		if pdu.DomainOf(m) != rs.serverName {
			continue
		}
		if l := levels.UserLevel(m); l >= levels.Invite && (best == "" || l > bestLevel) {
			best, bestLevel = m, l
		}
	}
	if best == "" {
		return "", ErrCannotAuthoriseJoin
	}
	return best, nil
}
