package syncapi

import (
	"testing"
	"time"

	"github.com/myelin-chat/myelin/storage"
)

func fired(w *waiter) bool {
	select {
	case <-w.ch:
		return true
	default:
		return false
	}
}

func TestNotifier(t *testing.T) {
	n := newNotifier()
	a := n.register("@a:x", 10, true)
	b := n.register("@b:x", 10, true)
	n.setRooms("@a:x", []string{"!r:x"})
	n.setRooms("@b:x", []string{"!other:x"})

	n.notify(5, "!r:x", nil) // already covered
	if fired(a) {
		t.Fatal("woken by an old position")
	}
	n.notify(11, "!r:x", nil)
	if !fired(a) || fired(b) {
		t.Fatalf("room wake-up: a %v b %v", fired(a), fired(b))
	}
	n.notify(12, "", []string{"@b:x"})
	if !fired(b) {
		t.Fatal("user wake-up missed")
	}
	if n.latest() != 12 || n.waiting() != 0 {
		t.Errorf("latest %d waiting %d", n.latest(), n.waiting())
	}

	// Memberships from the output stream move users between rooms.
	n.membership("!new:x", "@a:x", "join")
	a = n.register("@a:x", 20, true)
	n.notify(21, "!new:x", nil)
	if !fired(a) {
		t.Fatal("join from the stream not applied")
	}
	n.membership("!new:x", "@a:x", "leave")
	a = n.register("@a:x", 30, true)
	n.notify(31, "!new:x", nil)
	if fired(a) {
		t.Fatal("leave from the stream not applied")
	}
	n.notify(0, "!r:x", nil) // typing: no position, always wakes
	if !fired(a) {
		t.Fatal("typing wake-up missed")
	}
	n.unregister("@a:x", a)
	b = n.register("@b:x", 40, true)
	n.wakeAll()
	if !fired(b) {
		t.Fatal("wakeAll missed a waiter")
	}
}

// TestNotifierOnWake: a parked long-poll's waiter has no channel and is
// woken through its callback, set after registration; one woken before
// the callback is set says so.
func TestNotifierOnWake(t *testing.T) {
	n := newNotifier()
	n.setRooms("@a:x", []string{"!r:x"})
	a := n.register("@a:x", 10, false)
	woken := 0
	if !n.onWake(a, func() { woken++ }) {
		t.Fatal("onWake on a waiter not yet woken returned false")
	}
	n.notify(11, "!r:x", nil)
	n.notify(12, "!r:x", nil)
	if woken != 1 || n.waiting() != 0 {
		t.Fatalf("woken %d times, %d waiting", woken, n.waiting())
	}
	b := n.register("@a:x", 20, false)
	n.notify(21, "!r:x", nil) // before the callback: nothing to call
	if n.onWake(b, func() { t.Fatal("called for a waiter woken before") }) {
		t.Fatal("onWake on a woken waiter returned true")
	}
}

func TestTypingTable(t *testing.T) {
	changes := make(chan string, 10)
	tt := newTypingTable(func(room string) { changes <- room })
	deadline := time.Now().Add(150 * time.Millisecond).UnixMilli()
	tt.apply(typingUpdate{RoomID: "!r:x", UserID: "@a:x", Typing: true, DeadlineMS: deadline})
	tt.apply(typingUpdate{RoomID: "!r:x", UserID: "@a:x", Typing: true, DeadlineMS: deadline}) // the bus copy
	if got := len(changes); got != 1 {
		t.Fatalf("%d changes for one typing start", got)
	}
	<-changes
	serial := tt.current()
	if users, changed := tt.since("!r:x", serial-1); !changed || len(users) != 1 {
		t.Errorf("since(before) = %v, %v", users, changed)
	}
	if _, changed := tt.since("!r:x", serial); changed {
		t.Error("since(now) reports a change")
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("typing did not expire")
	}
	if users := tt.typingNow("!r:x"); len(users) != 0 {
		t.Errorf("after expiry: %v", users)
	}
	// An update already past its deadline is a stop.
	tt.apply(typingUpdate{RoomID: "!r:x", UserID: "@b:x", Typing: true, DeadlineMS: time.Now().Add(-time.Second).UnixMilli()})
	if users := tt.typingNow("!r:x"); len(users) != 0 {
		t.Errorf("expired update applied: %v", users)
	}
}

func TestVisibility(t *testing.T) {
	const userID = "@u:x"
	empty := ""
	// ev is the event at pos: the history_visibility and member events at
	// the positions the lists give them, a message elsewhere.
	var v *roomVisibility
	ev := func(pos int64) *storage.EventRecord {
		for _, s := range v.visibility {
			if s.pos == pos {
				return &storage.EventRecord{StreamPos: pos, Type: "m.room.history_visibility", StateKey: &empty}
			}
		}
		for _, s := range v.memberships {
			if s.pos == pos {
				uid := userID
				return &storage.EventRecord{StreamPos: pos, Type: "m.room.member", StateKey: &uid}
			}
		}
		return &storage.EventRecord{StreamPos: pos, Type: "m.room.message"}
	}
	// history: shared at 1, user invited at 5, joined at 8, visibility
	// joined at 10, left at 15; world_readable at 20.
	v = &roomVisibility{
		userID:      userID,
		visibility:  []stateAt{{1, "shared"}, {10, "joined"}, {20, "world_readable"}},
		memberships: []stateAt{{5, "invite"}, {8, "join"}, {15, "leave"}},
	}
	for _, c := range []struct {
		pos  int64
		want bool
	}{
		{3, false},  // shared, joined later but has left since
		{9, true},   // joined
		{10, true},  // the visibility event itself (joined either way)
		{12, true},  // joined, visibility joined
		{15, true},  // the user's own leave: visible under the state before it
		{17, false}, // after leaving, visibility joined
		{20, true},  // world_readable event: visible after it
		{22, true},  // world_readable
	} {
		if got := v.canSee(ev(c.pos)); got != c.want {
			t.Errorf("canSee(%d) = %v, want %v", c.pos, got, c.want)
		}
	}
	// The same history for a user who is joined now (say, joined again
	// after 22): shared history is visible, what "joined" hid is not.
	v.joinedNow = true
	for _, c := range []struct {
		pos  int64
		want bool
	}{{3, true}, {9, true}, {17, false}, {22, true}} {
		if got := v.canSee(ev(c.pos)); got != c.want {
			t.Errorf("joined now: canSee(%d) = %v, want %v", c.pos, got, c.want)
		}
	}
	invited := &roomVisibility{
		userID:      userID,
		visibility:  []stateAt{{1, "invited"}},
		memberships: []stateAt{{5, "invite"}, {8, "leave"}},
	}
	for _, c := range []struct {
		pos  int64
		want bool
	}{{3, false}, {6, true}, {9, false}} {
		if got := invited.canSee(ev(c.pos)); got != c.want {
			t.Errorf("invited: canSee(%d) = %v, want %v", c.pos, got, c.want)
		}
	}
	if !v.everMember() || !v.worldReadable() || (&roomVisibility{}).everMember() {
		t.Error("everMember / worldReadable")
	}
}

func TestNotifySoonMerges(t *testing.T) {
	n := newNotifier()
	a := n.register("@a:x", 0, true)
	n.setRooms("@a:x", []string{"!r:x"})
	start := time.Now()
	for i := range 50 {
		n.notifySoon(int64(i+1), "!r:x", []string{"@z:x"})
	}
	if fired(a) {
		t.Fatal("a merged wake-up fired at once")
	}
	select {
	case <-a.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("merged wake-up never fired")
	}
	if d := time.Since(start); d < coalesceDelay/2 {
		t.Errorf("fired after %v", d)
	}
	if n.latest() != 50 {
		t.Errorf("latest %d", n.latest())
	}
}
