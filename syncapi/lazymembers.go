package syncapi

// Lazy-loading room members (client-server-api "Lazy-loading room
// members"): with lazy_load_members, a sync sends the member events of the
// timeline's senders only. The spec lets a server skip those a client was
// already sent ("redundant" ones) unless include_redundant_members is set;
// this cache remembers, per device, which members it was sent in each
// room. It lives in the process's memory: a device served by another
// process, or forgotten here, is simply sent its members again, which is
// always correct. An initial sync starts the device afresh.

import (
	"sync"

	"github.com/myelin-chat/myelin/storage"
)

// maxLazyDevices bounds the cache; past it, half the devices are forgotten
// (they get their members again on their next sync).
const maxLazyDevices = 20000

type lazyMembersCache struct {
	mu      sync.Mutex
	devices map[string]*sentMembers
}

// sentMembers is what one device has been sent: room → user IDs.
type sentMembers struct {
	mu    sync.Mutex
	rooms map[string]map[string]bool
}

func newLazyMembersCache() *lazyMembersCache {
	return &lazyMembersCache{devices: map[string]*sentMembers{}}
}

// forDevice returns the device's record, emptied when reset is true.
func (c *lazyMembersCache) forDevice(userID, deviceID string, reset bool) *sentMembers {
	key := userID + "\x00" + deviceID
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.devices[key]
	if s == nil || reset {
		makeRoom(c.devices, maxLazyDevices)
		s = &sentMembers{rooms: map[string]map[string]bool{}}
		c.devices[key] = s
	}
	return s
}

// missing returns the users of users whose member event the device has not
// been sent in the room (all of them with includeRedundant).
func (s *sentMembers) missing(roomID string, users []string, includeRedundant bool) []string {
	if includeRedundant {
		return users
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := s.rooms[roomID]
	var out []string
	for _, u := range users {
		if !sent[u] {
			out = append(out, u)
		}
	}
	return out
}

// record notes the member events among evs as sent.
func (s *sentMembers) record(roomID string, evs []*storage.EventRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if ev.Type != "m.room.member" || ev.StateKey == nil {
			continue
		}
		sent := s.rooms[roomID]
		if sent == nil {
			sent = map[string]bool{}
			s.rooms[roomID] = sent
		}
		sent[*ev.StateKey] = true
	}
}
