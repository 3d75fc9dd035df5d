package sender

// Local users' typing, sent to the other servers in the room (server-
// server-api "Typing Notifications"). The sender hears every typing change
// on the bus; for a local user it sends m.typing to the room's other
// servers when the user starts, again every typingPing while the user goes
// on (the receiving server forgets it after a minute), and stops it when
// the client says so or its timeout passes.

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
)

const (
	eduTyping = "m.typing"
	// typingPing is how often a still typing user's typing is sent again
	// (Synapse's FEDERATION_PING_INTERVAL; receivers keep it 60 s).
	typingPing = 40 * time.Second
)

type typistKey struct{ room, user string }

// typist is a local user typing, as this sender last told the others.
type typist struct {
	deadline time.Time
	lastSent time.Time
	timer    *time.Timer
}

type typingOut struct {
	s *Sender

	// mu orders the EDUs of one typist: it is held while they are queued.
	mu      sync.Mutex
	typists map[typistKey]*typist
	stopped bool
}

func newTypingOut(s *Sender) *typingOut {
	return &typingOut{s: s, typists: map[typistKey]*typist{}}
}

func (t *typingOut) onUpdate(m *nats.Msg) {
	var u bus.TypingUpdate
	if err := json.Unmarshal(m.Data, &u); err != nil || u.RoomID == "" {
		return
	}
	t.apply(u)
}

// apply sends what a local user's change means to the other servers.
func (t *typingOut) apply(u bus.TypingUpdate) {
	if roomserver.UserServer(u.UserID) != t.s.cfg.ServerName {
		return // a remote user's, which its own server sends
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	k := typistKey{u.RoomID, u.UserID}
	ty := t.typists[k]
	now := t.s.cfg.Now()
	deadline := time.UnixMilli(u.DeadlineMS)
	if !u.Typing || !deadline.After(now) {
		if ty != nil {
			ty.timer.Stop()
			delete(t.typists, k)
			t.send(k, false)
		}
		return
	}
	if ty == nil {
		ty = &typist{}
		t.typists[k] = ty
	} else {
		ty.timer.Stop()
	}
	ty.deadline = deadline
	if now.Sub(ty.lastSent) >= typingPing {
		ty.lastSent = now
		t.send(k, true)
	}
	t.arm(k, ty)
}

// arm sets the typist's timer to its next ping or its deadline.
func (t *typingOut) arm(k typistKey, ty *typist) {
	next := ty.lastSent.Add(typingPing)
	if ty.deadline.Before(next) {
		next = ty.deadline
	}
	ty.timer = time.AfterFunc(next.Sub(t.s.cfg.Now()), func() { t.due(k, ty) })
}

// due handles a typist's timer: the typing ended, or is to be sent again.
func (t *typingOut) due(k typistKey, ty *typist) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.typists[k] != ty {
		return // replaced or ended meanwhile
	}
	now := t.s.cfg.Now()
	if !now.Before(ty.deadline) {
		delete(t.typists, k)
		t.send(k, false)
		return
	}
	if now.Sub(ty.lastSent) >= typingPing {
		ty.lastSent = now
		t.send(k, true)
	}
	t.arm(k, ty)
}

// send queues an m.typing EDU for the room's other servers (under t.mu).
func (t *typingOut) send(k typistKey, typing bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dests, err := t.s.RoomDestinations(ctx, k.room)
	if err != nil {
		t.s.log.Warn("cannot send a typing notification", "room", k.room, "err", err)
		return
	}
	content, _ := json.Marshal(map[string]any{"room_id": k.room, "user_id": k.user, "typing": typing})
	edu := bus.EDU{Type: eduTyping, Content: content, Key: k.room + " " + k.user}
	if err := t.s.QueueEDU(ctx, dests, edu); err != nil {
		t.s.log.Warn("cannot send a typing notification", "room", k.room, "err", err)
	}
}

// stop ends the timers.
func (t *typingOut) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for _, ty := range t.typists {
		ty.timer.Stop()
	}
}
