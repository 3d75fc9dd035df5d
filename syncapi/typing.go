package syncapi

// Typing notifications (client-server-api "Typing Notifications"): held in
// memory, never stored, since they expire within seconds. The process that
// serves PUT /typing publishes the change on the bus (typingSubject), and
// so does the federation process for a remote user's m.typing EDU; every
// process, that one included, applies it to its own table and wakes its
// waiters, so a sync served by any process sees every user typing. The
// federation sender hears the local users' changes on the same subject.
//
// A change carries its absolute deadline, so every process expires it at
// the same moment without further messages.

import (
	"slices"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
)

// typingSubject carries typingUpdate messages (core NATS, namespaced):
// local users' changes, and remote users' from the federation process.
const typingSubject = bus.TypingSubject

// Typing timeouts: the default when a client gives none and the longest a
// client may ask for, as in Synapse.
const (
	defaultTypingTimeout = 30 * time.Second
	maxTypingTimeout     = 120 * time.Second
)

// typingUpdate is the bus message of one typing change.
type typingUpdate = bus.TypingUpdate

// typingTable is one process's view of who is typing where.
type typingTable struct {
	onChange func(roomID string) // wakes the room's waiters

	mu     sync.Mutex
	serial int64 // numbers the changes (the typing part of sync tokens)
	rooms  map[string]*roomTyping
}

type roomTyping struct {
	serial int64 // serial of the room's last change
	users  map[string]*typist
}

type typist struct {
	deadline time.Time
	timer    *time.Timer
}

func newTypingTable(onChange func(roomID string)) *typingTable {
	return &typingTable{onChange: onChange, rooms: make(map[string]*roomTyping)}
}

// apply records a change; it is idempotent, so a process that applies its
// own change twice (once directly, once from the bus) changes nothing the
// second time.
func (t *typingTable) apply(u typingUpdate) {
	t.mu.Lock()
	changed := t.applyLocked(u)
	t.mu.Unlock()
	if changed {
		t.onChange(u.RoomID)
	}
}

func (t *typingTable) applyLocked(u typingUpdate) bool {
	room := t.rooms[u.RoomID]
	var deadline time.Time
	if u.Typing {
		deadline = time.UnixMilli(u.DeadlineMS)
		if !deadline.After(time.Now()) {
			u.Typing = false // already expired in transit
		}
	}
	if !u.Typing {
		if room == nil || room.users[u.UserID] == nil {
			return false
		}
		room.users[u.UserID].timer.Stop()
		delete(room.users, u.UserID)
		t.bump(room)
		return true
	}
	if room == nil {
		room = &roomTyping{users: make(map[string]*typist)}
		t.rooms[u.RoomID] = room
	}
	if ty := room.users[u.UserID]; ty != nil {
		if ty.deadline.Equal(deadline) {
			return false
		}
		// Still typing, with a later deadline: what others see does not
		// change, so no serial and no wake-up.
		ty.timer.Stop()
		ty.deadline = deadline
		ty.timer = t.expireAt(u.RoomID, u.UserID, deadline)
		return false
	}
	room.users[u.UserID] = &typist{deadline: deadline, timer: t.expireAt(u.RoomID, u.UserID, deadline)}
	t.bump(room)
	return true
}

func (t *typingTable) bump(room *roomTyping) {
	t.serial++
	room.serial = t.serial
}

func (t *typingTable) expireAt(roomID, userID string, deadline time.Time) *time.Timer {
	return time.AfterFunc(time.Until(deadline), func() {
		t.mu.Lock()
		changed := false
		if room := t.rooms[roomID]; room != nil {
			if ty := room.users[userID]; ty != nil && ty.deadline.Equal(deadline) {
				delete(room.users, userID)
				t.bump(room)
				changed = true
			}
		}
		t.mu.Unlock()
		if changed {
			t.onChange(roomID)
		}
	})
}

// current returns the table's serial, the typing part of a new sync token.
func (t *typingTable) current() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serial
}

// since returns the users typing in roomID if the room's typing changed
// after serial (all rooms that ever had typists count as changed when
// serial is -1: a token from another process), with changed false when
// there is nothing to send.
func (t *typingTable) since(roomID string, serial int64) (users []string, changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	room := t.rooms[roomID]
	if room == nil || (serial >= 0 && room.serial <= serial) {
		return nil, false
	}
	users = make([]string, 0, len(room.users))
	for u := range room.users {
		users = append(users, u)
	}
	slices.Sort(users)
	return users, true
}

// typingNow returns who is typing in roomID now (for an initial sync).
func (t *typingTable) typingNow(roomID string) []string {
	users, _ := t.since(roomID, -1)
	return users
}
