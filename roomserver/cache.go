package roomserver

import "github.com/myelin-chat/myelin/roomserver/pdu"

// stateCache keeps, per room, the parsed current state events that the
// input path has looked up (the auth events of new events: create, power
// levels, join rules, members), so that sending a message reads no state
// from the database. An entry is tied to the snapshot of the current state
// it was read at: snapshots are immutable, so a room moved on by another
// process (a different snapshot) simply misses. Only the committer
// goroutine uses it, so it needs no lock.
//
// What a snapshot NID cannot show is a redaction of a current state event
// made by another process; this process's own redactions drop the room's
// entry. Entries written by a job that is then rolled back are dropped
// too (SQLite may hand out the same snapshot NID again).
type stateCache struct {
	rooms map[int64]*cachedState
}

type cachedState struct {
	snap int64
	// events at the keys looked up; a nil value means "not in the state".
	events map[pdu.StateKey]*pdu.Event
}

// Bounds: beyond them the cache starts again empty rather than tracking
// use, which is simple and enough for a cache of a few events per room.
const (
	cacheMaxRooms       = 10000
	cacheMaxKeysPerRoom = 512
)

// get returns the cached state of the room at snapshot snap, empty if the
// cache knows another snapshot or nothing.
func (c *stateCache) get(roomNID, snap int64) *cachedState {
	if c.rooms == nil || len(c.rooms) > cacheMaxRooms {
		c.rooms = make(map[int64]*cachedState)
	}
	cs := c.rooms[roomNID]
	if cs == nil || cs.snap != snap || len(cs.events) > cacheMaxKeysPerRoom {
		cs = &cachedState{snap: snap, events: make(map[pdu.StateKey]*pdu.Event)}
		c.rooms[roomNID] = cs
	}
	return cs
}

// byID returns the cached events by event ID.
func (cs *cachedState) byID() map[string]*pdu.Event {
	out := make(map[string]*pdu.Event, len(cs.events))
	for _, ev := range cs.events {
		if ev != nil {
			out[ev.EventID()] = ev
		}
	}
	return out
}

// advance moves the room's entry from snapshot from to snapshot to, which
// differs from it by the event ev at key.
func (c *stateCache) advance(roomNID, from, to int64, key pdu.StateKey, ev *pdu.Event) {
	cs := c.rooms[roomNID]
	if cs == nil || cs.snap != from {
		c.drop(roomNID)
		return
	}
	cs.snap = to
	cs.events[key] = ev
}

// drop forgets the room.
func (c *stateCache) drop(roomNID int64) { delete(c.rooms, roomNID) }

// clear forgets every room.
func (c *stateCache) clear() { c.rooms = nil }
