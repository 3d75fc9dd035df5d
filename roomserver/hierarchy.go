package roomserver

// Space hierarchies (client-server-api "Spaces", server-server-api
// "Spaces"): the summary of a room held here with its m.space.child
// events, and whether a user or a server may see it. Walking the tree,
// and asking other servers about rooms not held here, is the callers'
// (clientapi, federation).

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// SpaceRoom is one room of a space hierarchy: its summary and its
// m.space.child events.
type SpaceRoom struct {
	PublicRoom
	RoomVersion string `json:"room_version,omitempty"`
	Encryption  string `json:"encryption,omitempty"`
	// AllowedRoomIDs are the rooms whose members may join a restricted
	// room, for the asking server to decide about its users.
	AllowedRoomIDs []string     `json:"allowed_room_ids,omitempty"`
	ChildrenState  []SpaceChild `json:"children_state"`
}

// SpaceChild is an m.space.child event as hierarchies show it: stripped,
// with its origin_server_ts.
type SpaceChild struct {
	Type           string          `json:"type"`
	StateKey       string          `json:"state_key"`
	Sender         string          `json:"sender"`
	Content        json.RawMessage `json:"content"`
	OriginServerTS int64           `json:"origin_server_ts"`
}

// Via is the servers the child event names to reach the child room.
func (c SpaceChild) Via() []string {
	var out []string
	for _, v := range gjson.GetBytes(c.Content, "via").Array() {
		if v.Type == gjson.String && v.Str != "" {
			out = append(out, v.Str)
		}
	}
	return out
}

// Suggested reports whether the child event marks the room suggested.
func (c SpaceChild) Suggested() bool { return gjson.GetBytes(c.Content, "suggested").Bool() }

// SpaceRoomOf returns the hierarchy entry of a room held here, nil when
// this server does not hold it (or holds no state of it). Its children are
// the m.space.child events with a non-empty via, in the spec's order:
// by "order" (valid ones first), then origin_server_ts, then room ID.
func (rs *Roomserver) SpaceRoomOf(ctx context.Context, roomID string) (*SpaceRoom, error) {
	pr, err := rs.publicRoomOf(ctx, roomID)
	if err != nil || pr == nil {
		return nil, err
	}
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	if room.StateNID == 0 {
		return nil, nil // only an invite or a knock: no state here
	}
	sr := &SpaceRoom{PublicRoom: *pr, RoomVersion: room.Version, ChildrenState: []SpaceChild{}}
	if enc, err := rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.encryption"}); err == nil && enc != nil {
		sr.Encryption = gjson.GetBytes(enc.Content(), "algorithm").Str
	}
	if jr, err := rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.join_rules"}); err == nil && jr != nil {
		for _, cond := range gjson.GetBytes(jr.Content(), "allow").Array() {
			if cond.Get("type").Str == "m.room_membership" && cond.Get("room_id").Str != "" {
				sr.AllowedRoomIDs = append(sr.AllowedRoomIDs, cond.Get("room_id").Str)
			}
		}
	}
	children, err := rs.CurrentStateOfType(ctx, roomID, "m.space.child")
	if err != nil {
		return nil, err
	}
	for _, ev := range children {
		c := SpaceChild{Type: ev.Type(), StateKey: *ev.StateKey(), Sender: ev.Sender(), Content: ev.Content(), OriginServerTS: ev.OriginServerTS()}
		if len(c.Via()) > 0 {
			sr.ChildrenState = append(sr.ChildrenState, c)
		}
	}
	sortChildren(sr.ChildrenState)
	return sr, nil
}

// sortChildren orders children as spaces.md says: by "order" (a string of
// at most 50 characters in \x20–\x7E; children without a valid one after),
// then by origin_server_ts, then by room ID.
func sortChildren(cs []SpaceChild) {
	order := func(c SpaceChild) (string, bool) {
		v := gjson.GetBytes(c.Content, "order")
		if v.Type != gjson.String || len(v.Str) > 50 {
			return "", false
		}
		for _, r := range v.Str {
			if r < 0x20 || r > 0x7E {
				return "", false
			}
		}
		return v.Str, true
	}
	sort.SliceStable(cs, func(i, j int) bool {
		oi, vi := order(cs[i])
		oj, vj := order(cs[j])
		if vi != vj {
			return vi
		}
		if vi && oi != oj {
			return oi < oj
		}
		if cs[i].OriginServerTS != cs[j].OriginServerTS {
			return cs[i].OriginServerTS < cs[j].OriginServerTS
		}
		return cs[i].StateKey < cs[j].StateKey
	})
}

// UserMaySeeSpaceRoom applies client-server "space hierarchy" rule: the
// user is joined or invited, or the room is public, knockable or world
// readable, or restricted with the user joined to one of its allowed rooms.
func (rs *Roomserver) UserMaySeeSpaceRoom(ctx context.Context, sr *SpaceRoom, userID string) (bool, error) {
	if openToAll(sr) {
		return true, nil
	}
	m, err := rs.Membership(ctx, sr.RoomID, userID)
	if err != nil || m == "join" || m == "invite" {
		return err == nil, err
	}
	if sr.JoinRule == "restricted" || sr.JoinRule == "knock_restricted" {
		for _, allowed := range sr.AllowedRoomIDs {
			m, err := rs.Membership(ctx, allowed, userID)
			if err != nil && !errors.Is(err, ErrRoomNotFound) {
				return false, err
			}
			if m == "join" {
				return true, nil
			}
		}
	}
	return false, nil
}

// ServerMaySeeSpaceRoom is the rule for another server asking (the
// federation /hierarchy): as for a user, with "one of the server's users"
// for the user; a restricted room is shown with its allowed rooms, for the
// asking server to apply the rule to its users.
func (rs *Roomserver) ServerMaySeeSpaceRoom(ctx context.Context, sr *SpaceRoom, serverName string) (bool, error) {
	if openToAll(sr) || sr.JoinRule == "restricted" || sr.JoinRule == "knock_restricted" {
		return true, nil
	}
	room, err := rs.db.Room(ctx, sr.RoomID)
	if err != nil {
		return false, err
	}
	members, err := rs.db.RoomMembers(ctx, room.NID, "join", "invite")
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if pdu.DomainOf(m.UserID) == serverName {
			return true, nil
		}
	}
	return false, nil
}

// openToAll: public, knockable or world readable rooms are shown to
// anyone.
func openToAll(sr *SpaceRoom) bool {
	return sr.WorldReadable || sr.JoinRule == "public" || sr.JoinRule == "knock" || sr.JoinRule == "knock_restricted"
}
