package clientapi

// Propagation of profile changes into rooms (client-server-api "Events on
// change of profile information"): when a user changes their displayname
// or avatar_url, the server sends a new m.room.member event, with the
// membership unchanged, to every room the user has joined.

import (
	"context"
	"encoding/json"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// profileChanged sends the new value of key (displayname or avatar_url;
// other fields do not appear in member events) to d's joined rooms. A
// room that refuses the event (the user may not change their own member
// event there, or the room is gone) is skipped, as Synapse does: the
// profile change itself has succeeded.
func (a *API) profileChanged(ctx context.Context, d *auth.Device, key string) error {
	if (key != "displayname" && key != "avatar_url") || a.rs == nil {
		return nil
	}
	p, err := a.db.Profile(ctx, d.Localpart())
	if err != nil {
		return err
	}
	value, set := p[key]
	rooms, err := a.rs.RoomsForUser(ctx, d.UserID, "join")
	if err != nil {
		return err
	}
	log := httputil.Logger(ctx)
	for _, roomID := range rooms {
		ev, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.member", StateKey: d.UserID})
		if err != nil {
			return err
		}
		if ev == nil || ev.Membership() != "join" {
			continue // left meanwhile
		}
		var content map[string]json.RawMessage
		if err := json.Unmarshal(ev.Content(), &content); err != nil || content == nil {
			content = map[string]json.RawMessage{"membership": json.RawMessage(`"join"`)}
		}
		if set && string(value) != `""` {
			content[key] = value
		} else {
			delete(content, key)
		}
		raw, err := json.Marshal(content)
		if err != nil {
			return err
		}
		if string(raw) == string(ev.Content()) {
			continue // no change in this room (e.g. a per-room name was set)
		}
		stateKey := d.UserID
		if _, err := a.rs.Send(ctx, roomID, roomserver.EventRequest{
			Type: "m.room.member", StateKey: &stateKey, Sender: d.UserID, Content: raw,
		}); err != nil {
			if ctx.Err() != nil {
				return err
			}
			log.WarnContext(ctx, "profile change not sent to a room", "room_id", roomID, "err", err)
		}
	}
	return nil
}
