package push

// What the notifier needs of a room: its joined members (their number,
// and which are local), its power levels, and (on demand) local members'
// display names, cached per room.
//
// An entry is the room as of a state snapshot. An event whose state
// before it is that snapshot, or an older one, is evaluated against the
// entry (snapshot NIDs grow as a room's state moves on, so an older one
// means the notifier is behind the room, and the newer members are the
// right ones to notify). A state event the entry was exactly before is
// applied to it, so that a room of 10,000 members being joined by more
// does not read its member list again at every join. Anything else (a
// newer state from another process, a fork) reloads the entry from the
// room's current state.

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

// roomInfo is a room as of one state snapshot. The notifier handles one
// event at a time, but mu guards it anyway.
type roomInfo struct {
	mu       sync.Mutex
	roomNID  int64
	stateNID int64
	joined   map[string]struct{} // every joined member
	local    []string            // the local ones, sorted
	create   *roomserver.StoredEvent
	power    *auth.PowerLevels // nil: the defaults
	names    map[string]string // local members' display names, filled on demand
}

func newRoomCache(s *Service) *roomCache {
	return &roomCache{s: s, rooms: map[string]*roomInfo{}}
}

// get returns the room to evaluate rec in, or nil for a room this server
// has no state of (an invite from another server's room).
func (c *roomCache) get(ctx context.Context, tx *storage.Tx, rec *storage.EventRecord) (*roomInfo, error) {
	c.mu.Lock()
	ri := c.rooms[rec.RoomID]
	c.mu.Unlock()
	if ri != nil && rec.StateBeforeNID != 0 && ri.at() >= rec.StateBeforeNID {
		return ri, nil
	}
	room, err := tx.Room(ctx, rec.RoomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if room.StateNID == 0 {
		return nil, nil
	}
	if ri != nil && ri.at() == room.StateNID {
		return ri, nil
	}
	if ri, err = c.load(ctx, tx, room); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.rooms) >= maxRooms {
		clear(c.rooms)
	}
	c.rooms[rec.RoomID] = ri
	c.mu.Unlock()
	return ri, nil
}

// load reads the room as of its current state.
func (c *roomCache) load(ctx context.Context, tx *storage.Tx, room *storage.Room) (*roomInfo, error) {
	members, err := tx.RoomMembers(ctx, room.NID, "join")
	if err != nil {
		return nil, err
	}
	ri := &roomInfo{roomNID: room.NID, stateNID: room.StateNID, joined: make(map[string]struct{}, len(members))}
	for _, m := range members {
		ri.joined[m.UserID] = struct{}{}
		if c.s.local(m.UserID) {
			ri.local = append(ri.local, m.UserID)
		}
	}
	slices.Sort(ri.local)
	state, err := tx.CurrentStateEvents(ctx, room.NID, []storage.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}})
	if err != nil {
		return nil, err
	}
	var pl *storage.EventRecord
	for _, ev := range state {
		switch ev.Type {
		case "m.room.create":
			if ri.create, err = roomserver.ParseRecord(ev); err != nil {
				return nil, err
			}
		case "m.room.power_levels":
			pl = ev
		}
	}
	c.setPower(ri, pl)
	return ri, nil
}

// setPower parses the power levels (nil: none) against the create event.
func (c *roomCache) setPower(ri *roomInfo, pl *storage.EventRecord) {
	ri.power = nil
	if ri.create == nil {
		return
	}
	var err error
	if pl == nil {
		ri.power, err = auth.PowerLevelsFromState(ri.create.Event, nil)
	} else {
		var ple *roomserver.StoredEvent
		if ple, err = roomserver.ParseRecord(pl); err == nil {
			ri.power, err = auth.PowerLevelsFromState(ri.create.Event, ple.Event)
		}
	}
	if err != nil {
		// Unparseable power levels: everyone at the defaults.
		c.s.log.Warn("the room's power levels do not parse", "room_id", ri.create.RoomID, "err", err)
		ri.power = nil
	}
}

// apply moves the entry over the state event rec, when it is the room just
// before rec; otherwise the next event reloads it.
func (c *roomCache) apply(ri *roomInfo, rec *storage.EventRecord) {
	if ri == nil || rec.StateKey == nil || rec.StateAfterNID == 0 {
		return
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.stateNID != rec.StateBeforeNID {
		return
	}
	ri.stateNID = rec.StateAfterNID
	switch rec.Type {
	case "m.room.member":
		user := *rec.StateKey
		_, was := ri.joined[user]
		now := rec.Membership == "join"
		switch {
		case now && !was:
			ri.joined[user] = struct{}{}
			if c.s.local(user) {
				i, _ := slices.BinarySearch(ri.local, user)
				ri.local = slices.Insert(ri.local, i, user)
			}
		case !now && was:
			delete(ri.joined, user)
			if i, ok := slices.BinarySearch(ri.local, user); ok {
				ri.local = slices.Delete(ri.local, i, i+1)
			}
		}
		delete(ri.names, user) // a new display name, perhaps
	case "m.room.power_levels":
		if *rec.StateKey == "" {
			c.setPower(ri, rec)
		}
	}
}

// clear forgets every room.
func (c *roomCache) clear() {
	c.mu.Lock()
	clear(c.rooms)
	c.mu.Unlock()
}

// at is the snapshot the entry is the room as of.
func (ri *roomInfo) at() int64 {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.stateNID
}

// localMembers returns the local joined members.
func (ri *roomInfo) localMembers() []string {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return slices.Clone(ri.local)
}

func (ri *roomInfo) isLocalMember(userID string) bool {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	_, ok := slices.BinarySearch(ri.local, userID)
	return ok
}

// context is the pushrules view of the room for an event from sender.
func (ri *roomInfo) context(ctx context.Context, s *Service, tx *storage.Tx, sender string) *pushrules.RoomContext {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	rc := &pushrules.RoomContext{
		MemberCount: int64(len(ri.joined)),
		DisplayName: func(userID string) string { return ri.displayName(ctx, s, tx, userID) },
	}
	if ri.power != nil {
		power := ri.power
		rc.SenderLevel = power.UserLevel(sender)
		rc.NotificationLevel = power.NotificationLevel
	}
	return rc
}

// displayName returns a local member's display name in the room ("" when
// none or unreadable: the condition then does not match).
func (ri *roomInfo) displayName(ctx context.Context, s *Service, tx *storage.Tx, userID string) string {
	ri.mu.Lock()
	name, ok := ri.names[userID]
	ri.mu.Unlock()
	if ok {
		return name
	}
	evs, err := tx.CurrentStateEvents(ctx, ri.roomNID, []storage.StateKey{{Type: "m.room.member", StateKey: userID}})
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
