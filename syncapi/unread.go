package syncapi

// Unread notification counts (push module, "Receiving notifications"):
// unread_notifications per joined room and, with the timeline filter's
// unread_thread_notifications, unread_thread_notifications per thread.
// The notifier (syncapi/push) records notifications and read receipts
// mark them read (receipts.go); this file reads the counts and decides
// which rooms must carry new ones.
//
// "The updated notification count from a new event MUST appear in the same
// /sync response as the event itself." The notifier evaluates an event
// after the roomserver commits it, and announces (push.Progress) how far
// it got. So the wake-up of the syncs waiting for an event is held back
// until the notifier is past it, and a sync that reads an event before
// that (one that was not waiting) waits for the notifier before reading
// the counts; both for at most pushWaitLimit, and not at all for a while
// after the notifier failed to come in time (down, or far behind).
//
// A notification row's stream position is its event's (or, once read,
// the receipt's), so an incremental sync finds the rooms whose counts
// changed after its token by position; waiting as above makes sure the
// rows of an event exist before a response covers its position.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/push"
)

// How long a wake-up waits for the notifier, and how long after one that
// waited in vain (the notifier down or far behind) wake-ups go out at once.
const (
	pushWaitLimit  = time.Second
	pushLagBackoff = 10 * time.Second
	// maxHeldWakes bounds the wake-ups held; past it the oldest go out.
	maxHeldWakes = 10000
)

// pushProgress follows the notifier's progress and holds wake-ups for
// events it has not evaluated yet.
type pushProgress struct {
	mu       sync.Mutex
	pos      int64
	held     []heldWake // in stream order
	lagUntil time.Time
	timer    *time.Timer
	closed   bool
	// changed is closed (and cleared) when pos moves, for wait.
	changed chan struct{}
}

type heldWake struct {
	pos   int64
	since time.Time
	wake  func()
}

// followPushProgress starts following the notifier's progress from what
// it last stored, and returns the function that stops it.
func (a *API) followPushProgress(ctx context.Context) (stop func(), err error) {
	pos, err := a.db.PushProgress(ctx)
	if err != nil {
		return nil, fmt.Errorf("syncapi: %w", err)
	}
	a.pushProgress.advance(pos)
	sub, err := a.bus.Conn().Subscribe(a.bus.Subject(push.ProgressSubject), func(m *nats.Msg) {
		var p push.Progress
		if json.Unmarshal(m.Data, &p) == nil {
			a.pushProgress.advance(p.Pos)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("syncapi: subscribe to %s: %w", push.ProgressSubject, err)
	}
	return func() {
		_ = sub.Unsubscribe()
		a.pushProgress.close()
	}, nil
}

// after runs wake once the notifier has evaluated the event at pos (at
// once if it has, or if it is known to lag).
func (p *pushProgress) after(pos int64, wake func()) {
	now := time.Now()
	p.mu.Lock()
	if p.closed || pos <= p.pos || now.Before(p.lagUntil) {
		p.mu.Unlock()
		wake()
		return
	}
	var overflow []heldWake
	if len(p.held) >= maxHeldWakes {
		overflow = slices.Clone(p.held[:len(p.held)/2])
		p.held = slices.Delete(p.held, 0, len(p.held)/2)
	}
	p.held = append(p.held, heldWake{pos: pos, since: now, wake: wake})
	if p.timer == nil {
		p.timer = time.AfterFunc(pushWaitLimit, p.expire)
	}
	p.mu.Unlock()
	for _, h := range overflow {
		h.wake()
	}
}

// advance records the notifier's progress and releases what waited for
// it.
func (p *pushProgress) advance(pos int64) {
	p.mu.Lock()
	if pos <= p.pos {
		p.mu.Unlock()
		return
	}
	p.pos = pos
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
	n := 0
	for n < len(p.held) && p.held[n].pos <= pos {
		n++
	}
	ready := slices.Clone(p.held[:n])
	p.held = slices.Delete(p.held, 0, n)
	p.mu.Unlock()
	for _, h := range ready {
		h.wake()
	}
}

// expire releases the wake-ups held too long; that the notifier did not
// get there in time means it is down or behind, so wake-ups stop waiting
// for a while.
func (p *pushProgress) expire() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.held) && now.Sub(p.held[n].since) >= pushWaitLimit {
		n++
	}
	ready := slices.Clone(p.held[:n])
	p.held = slices.Delete(p.held, 0, n)
	if n > 0 {
		p.lagUntil = now.Add(pushLagBackoff)
	}
	p.timer = nil
	if len(p.held) > 0 {
		p.timer = time.AfterFunc(pushWaitLimit-now.Sub(p.held[0].since), p.expire)
	}
	p.mu.Unlock()
	for _, h := range ready {
		h.wake()
	}
}

// wait returns once the notifier has evaluated the event at pos, or after
// pushWaitLimit (the notifier is then taken to lag), or when ctx ends.
func (p *pushProgress) wait(ctx context.Context, pos int64) {
	deadline := time.Now().Add(pushWaitLimit)
	for {
		now := time.Now()
		p.mu.Lock()
		if p.closed || pos <= p.pos || now.Before(p.lagUntil) {
			p.mu.Unlock()
			return
		}
		if !now.Before(deadline) {
			p.lagUntil = now.Add(pushLagBackoff)
			p.mu.Unlock()
			return
		}
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		ch := p.changed
		p.mu.Unlock()
		t := time.NewTimer(deadline.Sub(now))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// close releases everything held; later wake-ups go out at once.
func (p *pushProgress) close() {
	p.mu.Lock()
	p.closed = true
	ready := p.held
	p.held = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	for _, h := range ready {
		h.wake()
	}
}

// unreadRoom is a room's counts in a response.
type unreadRoom struct {
	total   unreadCounts
	main    unreadCounts
	threads map[string]unreadCounts
}

// addUnread brings into an incremental response the joined rooms whose
// counts changed since the token, and reads the counts of every joined
// room in the response.
func (b *syncBuilder) addUnread(memberships []storage.SyncMembership) error {
	if b.since > 0 && !b.req.fullState {
		changed, err := b.a.db.NotificationRoomsChanged(b.ctx, b.req.userID, b.since, b.upto)
		if err != nil {
			return err
		}
		for _, m := range memberships {
			if m.Membership == "join" && slices.Contains(changed, m.RoomID) {
				b.result(m, "join")
			}
		}
	}
	var newest int64
	joined := false
	for _, r := range b.rooms {
		if r.section == "join" {
			joined = true
			for _, ev := range r.timeline {
				newest = max(newest, ev.StreamPos)
			}
		}
	}
	if !joined {
		return nil
	}
	// Rarely waits: the syncs that were waiting for these events were
	// woken after the notifier got past them.
	b.a.pushProgress.wait(b.ctx, newest)
	counts, err := b.a.db.UnreadCounts(b.ctx, b.req.userID, b.upto)
	if err != nil {
		return err
	}
	b.unread = map[string]*unreadRoom{}
	for _, c := range counts {
		u := b.unread[c.RoomID]
		if u == nil {
			u = &unreadRoom{}
			b.unread[c.RoomID] = u
		}
		uc := unreadCounts{NotificationCount: c.Notifications, HighlightCount: c.Highlights}
		u.total.NotificationCount += uc.NotificationCount
		u.total.HighlightCount += uc.HighlightCount
		if c.ThreadID == storage.MainThread {
			u.main = uc
		} else {
			if u.threads == nil {
				u.threads = map[string]unreadCounts{}
			}
			u.threads[c.ThreadID] = uc
		}
	}
	return nil
}

// setUnread gives a joined room of the response its counts: per thread
// when the filter asks for them (the room's count is then the main
// timeline's), else all threads together.
func (b *syncBuilder) setUnread(jr *joinedRoom, roomID string) {
	u := b.unread[roomID]
	if u == nil {
		return
	}
	if !b.f.Room.Timeline.UnreadThreadNotifications {
		jr.UnreadNotifications = u.total
		return
	}
	jr.UnreadNotifications = u.main
	if len(u.threads) > 0 {
		jr.UnreadThreadNotifications = u.threads
	}
}

// addDefaultPushRules gives an initial sync the server-default push rules
// as m.push_rules account data when the user never changed theirs (only
// changes are stored), since clients read their rules from there.
func (b *syncBuilder) addDefaultPushRules(resp *syncResponse) {
	if b.req.since != nil || !b.f.AccountData.matches("m.push_rules", "") {
		return
	}
	if resp.AccountData != nil && slices.ContainsFunc(resp.AccountData.Events, func(ev json.RawMessage) bool {
		return gjson.GetBytes(ev, "type").Str == "m.push_rules"
	}) {
		return
	}
	ev := accountDataEvent(storage.AccountData{Type: "m.push_rules", Content: pushrules.Defaults(b.req.userID).AccountData()})
	if resp.AccountData == nil {
		resp.AccountData = &eventBatch{}
	}
	resp.AccountData.Events = append(resp.AccountData.Events, ev)
}
