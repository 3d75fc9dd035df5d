package push

// What the notifier needs of a room, cached while the room's state does
// not change: its joined member count, its local joined members, its power
// levels, and (on demand) local members' display names. Keyed by the
// current state snapshot, so a change made by any process is seen at the
// next event.

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/storage"
)

// maxRooms bounds the rooms cached; past it, the cache starts afresh.
const maxRooms = 2000

type roomCache struct {
	s     *Service
	mu    sync.Mutex
	rooms map[string]*roomInfo
}

// roomInfo is a room as of one state snapshot. Immutable but for names.
type roomInfo struct {
	roomNID  int64
	stateNID int64
	joined   int64
	local    []string // sorted
	power    *auth.PowerLevels

	mu    sync.Mutex
	names map[string]string // local members' display names, filled on demand
}

func newRoomCache(s *Service) *roomCache {
	return &roomCache{s: s, rooms: map[string]*roomInfo{}}
}

// get returns the room as of its current state, or nil for a room this
// server has no state of (an invite from another server's room).
func (c *roomCache) get(ctx context.Context, roomID string) (*roomInfo, error) {
	db := c.s.cfg.DB
	room, err := db.Room(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if room.StateNID == 0 {
		return nil, nil
	}
	c.mu.Lock()
	ri := c.rooms[roomID]
	c.mu.Unlock()
	if ri != nil && ri.stateNID == room.StateNID {
		return ri, nil
	}
	ri, err = c.load(ctx, room)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.rooms) >= maxRooms {
		clear(c.rooms)
	}
	c.rooms[roomID] = ri
	c.mu.Unlock()
	return ri, nil
}

func (c *roomCache) load(ctx context.Context, room *storage.Room) (*roomInfo, error) {
	db := c.s.cfg.DB
	members, err := db.RoomMembers(ctx, room.NID, "join")
	if err != nil {
		return nil, err
	}
	ri := &roomInfo{roomNID: room.NID, stateNID: room.StateNID, joined: int64(len(members))}
	for _, m := range members {
		if c.s.local(m.UserID) {
			ri.local = append(ri.local, m.UserID)
		}
	}
	slices.Sort(ri.local)
	state, err := db.CurrentStateEvents(ctx, room.NID, []storage.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}})
	if err != nil {
		return nil, err
	}
	var create, pl *storage.EventRecord
	for _, ev := range state {
		switch ev.Type {
		case "m.room.create":
			create = ev
		case "m.room.power_levels":
			pl = ev
		}
	}
	if create != nil {
		ce, err := roomserver.ParseRecord(create)
		if err != nil {
			return nil, err
		}
		var ple *roomserver.StoredEvent
		if pl != nil {
			if ple, err = roomserver.ParseRecord(pl); err != nil {
				return nil, err
			}
		}
		if ple != nil {
			ri.power, err = auth.PowerLevelsFromState(ce.Event, ple.Event)
		} else {
			ri.power, err = auth.PowerLevelsFromState(ce.Event, nil)
		}
		if err != nil {
			// Unparseable power levels: everyone at the defaults.
			c.s.log.Warn("the room's power levels do not parse", "room_id", room.RoomID, "err", err)
			ri.power = nil
		}
	}
	return ri, nil
}

func (ri *roomInfo) isLocalMember(userID string) bool {
	_, ok := slices.BinarySearch(ri.local, userID)
	return ok
}

// context is the pushrules view of the room for an event from sender.
func (ri *roomInfo) context(ctx context.Context, s *Service, sender string) *pushrules.RoomContext {
	rc := &pushrules.RoomContext{
		MemberCount: ri.joined,
		DisplayName: func(userID string) string { return ri.displayName(ctx, s, userID) },
	}
	if ri.power != nil {
		rc.SenderLevel = ri.power.UserLevel(sender)
		rc.NotificationLevel = ri.power.NotificationLevel
	}
	return rc
}

// displayName returns a local member's display name in the room ("" when
// none or unreadable: the condition then does not match).
func (ri *roomInfo) displayName(ctx context.Context, s *Service, userID string) string {
	ri.mu.Lock()
	name, ok := ri.names[userID]
	ri.mu.Unlock()
	if ok {
		return name
	}
	evs, err := s.cfg.DB.CurrentStateEvents(ctx, ri.roomNID, []storage.StateKey{{Type: "m.room.member", StateKey: userID}})
	if err != nil {
		s.log.Warn("cannot read a member's display name", "user_id", userID, "err", err)
		return ""
	}
	if len(evs) > 0 {
		name = gjson.GetBytes(evs[0].JSON, "content.displayname").Str
	}
	ri.mu.Lock()
	if ri.names == nil {
		ri.names = map[string]string{}
	}
	ri.names[userID] = name
	ri.mu.Unlock()
	return name
}
