package syncapi

// The notifier wakes /sync long-polls. It is in-process and in memory: it
// holds no data, only who is waiting. What feeds it comes from the bus (the
// roomserver's output stream and the sync.notify subject, see bus.go), so a
// write made by any process wakes the waiters of every process.
//
// A waiter is keyed by its user. Room-wide wake-ups (a message, a receipt,
// typing) reach the users the notifier knows to be joined to the room: it
// learns a user's rooms from each of their /sync calls (setRooms) and keeps
// them current from the membership events on the output stream, so it never
// queries the database. Only users who have synced through this process are
// known, which is exactly the users who can have waiters here.

import (
	"sync"
	"time"
)

// coalesceDelay is how long a presence wake-up may wait to be merged with
// others: when 200 members of a room come online at once, their syncs wake
// once, not 200 times each.
const coalesceDelay = 300 * time.Millisecond

type notifier struct {
	mu    sync.Mutex
	pos   int64 // highest stream position notified so far
	users map[string]*userEntry
	rooms map[string]map[*userEntry]struct{}

	// Wake-ups waiting to be merged (notifySoon): room ID or "@user" →
	// the highest position.
	pending      map[string]int64
	pendingTimer *time.Timer
}

type userEntry struct {
	userID  string
	waiters map[*waiter]struct{}
	rooms   map[string]struct{}
}

// waiter is one waiting /sync. When something it may want to return
// happens, fired is set and wake is called (under the notifier's lock) or,
// without a wake function, ch is closed.
type waiter struct {
	ch    chan struct{}
	wake  func()
	since int64 // the stream position the sync already covers
	fired bool
}

func newNotifier() *notifier {
	return &notifier{
		users: make(map[string]*userEntry),
		rooms: make(map[string]map[*userEntry]struct{}),
	}
}

func (n *notifier) user(userID string) *userEntry {
	u := n.users[userID]
	if u == nil {
		u = &userEntry{userID: userID, waiters: make(map[*waiter]struct{}), rooms: make(map[string]struct{})}
		n.users[userID] = u
	}
	return u
}

// register adds a waiter for userID, whose sync covers stream positions up
// to since. Register before reading the database, so that nothing written
// after the read can be missed. A waiter that will be woken through onWake
// needs no channel (withChan false).
func (n *notifier) register(userID string, since int64, withChan bool) *waiter {
	w := &waiter{since: since}
	if withChan {
		w.ch = make(chan struct{})
	}
	n.mu.Lock()
	n.user(userID).waiters[w] = struct{}{}
	n.mu.Unlock()
	return w
}

// unregister removes w (fired or not).
func (n *notifier) unregister(userID string, w *waiter) {
	n.mu.Lock()
	if u := n.users[userID]; u != nil {
		delete(u.waiters, w)
	}
	n.mu.Unlock()
}

// onWake sets the function that wakes w, instead of closing its channel;
// false when w was already woken.
func (n *notifier) onWake(w *waiter, wake func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.fired {
		return false
	}
	w.wake = wake
	return true
}

// advance raises the position w waits beyond, after its sync re-read the
// database up to pos.
func (n *notifier) advance(w *waiter, pos int64) {
	n.mu.Lock()
	w.since = max(w.since, pos)
	n.mu.Unlock()
}

// setRooms records the rooms userID is joined to, as its sync just read
// them from the database.
func (n *notifier) setRooms(userID string, roomIDs []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.user(userID)
	if len(u.rooms) == len(roomIDs) {
		same := true
		for _, r := range roomIDs {
			if _, ok := u.rooms[r]; !ok {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	keep := make(map[string]struct{}, len(roomIDs))
	for _, r := range roomIDs {
		keep[r] = struct{}{}
		n.join(u, r)
	}
	for r := range u.rooms {
		if _, ok := keep[r]; !ok {
			n.leave(u, r)
		}
	}
}

func (n *notifier) join(u *userEntry, roomID string) {
	u.rooms[roomID] = struct{}{}
	members := n.rooms[roomID]
	if members == nil {
		members = make(map[*userEntry]struct{})
		n.rooms[roomID] = members
	}
	members[u] = struct{}{}
}

func (n *notifier) leave(u *userEntry, roomID string) {
	delete(u.rooms, roomID)
	if members := n.rooms[roomID]; members != nil {
		delete(members, u)
		if len(members) == 0 {
			delete(n.rooms, roomID)
		}
	}
}

// membership applies a membership change seen on the output stream, for
// users the notifier knows.
func (n *notifier) membership(roomID, userID, membership string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	u := n.users[userID]
	if u == nil {
		return
	}
	if membership == "join" {
		n.join(u, roomID)
	} else {
		n.leave(u, roomID)
	}
}

// notify wakes the waiters of the users in roomID (if not "") and of
// userIDs whose syncs do not already cover pos. pos 0 (typing) wakes them
// all.
func (n *notifier) notify(pos int64, roomID string, userIDs []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pos = max(n.pos, pos)
	if roomID != "" {
		for u := range n.rooms[roomID] {
			u.wake(pos)
		}
	}
	for _, id := range userIDs {
		if u := n.users[id]; u != nil {
			u.wake(pos)
		}
	}
}

// notifySoon is notify, within coalesceDelay, merged with the other
// wake-ups of the same rooms and users meanwhile.
func (n *notifier) notifySoon(pos int64, roomID string, userIDs []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending == nil {
		n.pending = map[string]int64{}
	}
	add := func(key string) { n.pending[key] = max(n.pending[key], pos) }
	if roomID != "" {
		add(roomID)
	}
	for _, u := range userIDs {
		add(u)
	}
	if n.pendingTimer == nil {
		n.pendingTimer = time.AfterFunc(coalesceDelay, n.flushPending)
	}
}

func (n *notifier) flushPending() {
	n.mu.Lock()
	pending := n.pending
	n.pending, n.pendingTimer = nil, nil
	n.mu.Unlock()
	for key, pos := range pending {
		if key[0] == '@' {
			n.notify(pos, "", []string{key})
		} else {
			n.notify(pos, key, nil)
		}
	}
}

// wakeAll wakes every waiter: after the bus reconnects, when wake-ups may
// have been lost.
func (n *notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, u := range n.users {
		u.wake(0)
	}
}

func (u *userEntry) wake(pos int64) {
	for w := range u.waiters {
		if !w.fired && (pos == 0 || pos > w.since) {
			w.fired = true
			delete(u.waiters, w)
			switch {
			case w.wake != nil:
				w.wake()
			case w.ch != nil:
				close(w.ch)
			}
		}
	}
}

// latest is the highest stream position notified so far.
func (n *notifier) latest() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pos
}

// waiting counts the waiting syncs (for metrics and tests).
func (n *notifier) waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, u := range n.users {
		c += len(u.waiters)
	}
	return c
}
