package syncapi

// Unread notification counts (push module, "Receiving notifications"):
// unread_notifications per joined room and, with the timeline filter's
// unread_thread_notifications, unread_thread_notifications per thread.
// The notifier (syncapi/push) records notifications in the roomserver's
// transaction, so an event and its counts become visible together ("The
// updated notification count from a new event MUST appear in the same
// /sync response as the event itself"), and read receipts mark them read
// (receipts.go); this file reads the counts and decides which rooms must
// carry new ones.
//
// Each room and thread's counts carry the stream position of their last
// change (the new event's, or the read's), so an incremental sync finds
// the rooms whose counts changed after its token by position.

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/pushrules"
	"github.com/myelin-chat/myelin/storage"
)

// unreadRoom is a room's counts in a response.
type unreadRoom struct {
	total   unreadCounts
	main    unreadCounts
	threads map[string]unreadCounts
}

// addUnread brings into an incremental response the joined rooms whose
// counts changed since the token, and reads the counts of every joined
// room in the response (one statement for both).
func (b *syncBuilder) addUnread(memberships []storage.SyncMembership) error {
	incremental := b.since > 0 && !b.req.fullState
	hasJoined := func() bool {
		return slices.ContainsFunc(b.rooms, func(r *roomResult) bool { return r.section == "join" })
	}
	if !incremental && !hasJoined() {
		return nil
	}
	since := int64(math.MaxInt64) // no changed rooms to bring in
	if incremental {
		since = b.since
	}
	counts, changed, err := b.a.db.UnreadState(b.ctx, b.req.userID, since, b.upto)
	if err != nil {
		return err
	}
	for _, m := range memberships {
		if m.Membership == "join" && slices.Contains(changed, m.RoomID) {
			b.result(m, "join")
		}
	}
	if !hasJoined() {
		return nil
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
