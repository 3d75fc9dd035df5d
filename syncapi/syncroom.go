package syncapi

// Building one room of a /sync response: its timeline (limit, limited,
// prev_batch, history visibility, ignored users, the timeline filter), its
// state (at the start of the timeline, or the delta of a gap), lazy-loaded
// members, and the invite and knock sections' stripped state.

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// fullRoom adds a room with its whole state: the newest events in (from,
// end] and the state at the start of them.
func (b *syncBuilder) fullRoom(m storage.SyncMembership, section string, from, end int64) error {
	newest, err := b.a.db.SyncRoomTimeline(b.ctx, m.RoomNID, from, end, b.limit+1)
	if err != nil {
		return err
	}
	evs, limited := trimTimeline(newest, b.limit)
	r := b.result(m, section)
	r.full, r.limited = true, limited
	// The state at the start of the timeline: the state before its first
	// event, or, with no events to show, the state after the last one.
	var snapshot int64
	switch {
	case len(evs) > 0:
		snapshot = evs[0].StateBeforeNID
		r.prevBatch = evs[0].StreamPos - 1
	case len(newest) > 0: // a timeline limit of 0
		snapshot = newest[0].StateAfterNID
		r.prevBatch = newest[0].StreamPos
	default:
		last, err := b.a.db.SyncRoomTimeline(b.ctx, m.RoomNID, 0, end, 1)
		if err != nil {
			return err
		}
		if len(last) > 0 {
			snapshot = last[0].StateAfterNID
		}
		r.prevBatch = end
	}
	visible, err := b.visible(m, section, evs, true)
	if err != nil {
		return err
	}
	r.timeline = b.filterTimeline(m.RoomID, visible)
	var members []string
	if b.lazy {
		members = append(sendersOf(r.timeline), b.req.userID)
	}
	var state []*storage.EventRecord
	useCurrent := section == "join" && snapshot != 0 && snapshot == m.StateNID
	if useCurrent {
		// The state at the start of the timeline is the current state:
		// read it from room_state rather than from the snapshot's deltas,
		// unless it changed after upto meanwhile.
		if state, err = b.a.db.SyncCurrentState(b.ctx, m.RoomNID, !b.lazy, members); err != nil {
			return err
		}
		useCurrent = !slices.ContainsFunc(state, func(ev *storage.EventRecord) bool { return ev.StreamPos > b.upto })
	}
	if !useCurrent && snapshot != 0 {
		if state, err = b.a.db.SyncSnapshotState(b.ctx, snapshot, !b.lazy, members); err != nil {
			return err
		}
	}
	if len(r.timeline) < len(visible) {
		// State changes the timeline filter left out: their values at the
		// end of the timeline.
		state = append(state, notShown(latestPerKey(onlyState(visible)), r.timeline)...)
		state = latestPerKey(sortedByPos(state))
	}
	// Heroes name a room that has neither a name nor an alias; a lazy
	// client needs their member events too.
	if !hasName(append(slices.Clone(state), visible...)) {
		if r.heroes, err = b.a.db.SyncHeroes(b.ctx, m.RoomNID, b.req.userID, 5); err != nil {
			return err
		}
		if b.lazy && snapshot != 0 {
			extra, err := b.membersAt(snapshot, slices.DeleteFunc(slices.Clone(r.heroes), func(u string) bool { return slices.Contains(members, u) }))
			if err != nil {
				return err
			}
			state = append(state, extra...)
		}
	}
	b.setState(r, state, visible)
	return nil
}

// hasName reports whether state events include a non-empty room name or
// canonical alias.
func hasName(evs []*storage.EventRecord) bool {
	return slices.ContainsFunc(evs, func(ev *storage.EventRecord) bool {
		switch ev.Type {
		case "m.room.name":
			return gjson.GetBytes(ev.JSON, "content.name").Str != ""
		case "m.room.canonical_alias":
			return gjson.GetBytes(ev.JSON, "content.alias").Str != ""
		}
		return false
	})
}

// incrementalRoom adds a room's events in (since, end]: the events of a
// room left since the token, or of a room the user rejoined.
func (b *syncBuilder) incrementalRoom(m storage.SyncMembership, section string, end int64, checkVisibility bool) error {
	newest, err := b.a.db.SyncRoomTimeline(b.ctx, m.RoomNID, b.since, end, b.limit+1)
	if err != nil {
		return err
	}
	if len(newest) == 0 {
		return nil
	}
	return b.incrementalTimeline(m, section, newest, checkVisibility)
}

// incrementalTimeline adds a room given its new events, newest first (at
// least limit+1 of them when there are that many).
func (b *syncBuilder) incrementalTimeline(m storage.SyncMembership, section string, newest []*storage.EventRecord, checkVisibility bool) error {
	evs, limited := trimTimeline(newest, b.limit)
	r := b.result(m, section)
	r.limited = limited
	if len(evs) > 0 {
		r.prevBatch = evs[0].StreamPos - 1
	} else {
		r.prevBatch = newest[0].StreamPos
	}
	visible, err := b.visible(m, section, evs, checkVisibility)
	if err != nil {
		return err
	}
	r.timeline = b.filterTimeline(m.RoomID, visible)
	var state []*storage.EventRecord
	if limited || len(r.timeline) < len(evs) {
		// The state changes the timeline does not show: those of the gap
		// between the token and the timeline (their values at the start of
		// the timeline), and those the filter or history visibility left
		// out of it (their values at its end), as Synapse computes it.
		window, err := b.a.db.SyncStateEvents(b.ctx, m.RoomNID, b.since, newest[0].StreamPos)
		if err != nil {
			return err
		}
		start := newest[0].StreamPos + 1
		if len(evs) > 0 {
			start = evs[0].StreamPos
		}
		gap := slices.DeleteFunc(slices.Clone(window), func(ev *storage.EventRecord) bool { return ev.StreamPos >= start })
		state = notShown(append(latestPerKey(gap), latestPerKey(window)...), r.timeline)
	}
	if b.lazy && len(evs) > 0 {
		missing := b.members.missing(m.RoomID, sendersOf(r.timeline), b.f.Room.State.IncludeRedundantMembers)
		missing = slices.DeleteFunc(missing, func(u string) bool {
			return slices.ContainsFunc(state, func(ev *storage.EventRecord) bool {
				return ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == u
			})
		})
		if len(missing) > 0 {
			extra, err := b.membersAt(evs[0].StateBeforeNID, missing)
			if err != nil {
				return err
			}
			state = append(state, extra...)
		}
	}
	b.setState(r, state, visible)
	return nil
}

// setState gives r its state section, in stream order and filtered, and
// state_after when asked for (visible: the timeline before the filter).
func (b *syncBuilder) setState(r *roomResult, state, visible []*storage.EventRecord) {
	sortByPos(state)
	r.state = b.filterState(r.m.RoomID, state)
	if b.req.useStateAfter {
		r.stateAfter = stateAfter(r.state, visible, &b.f.Room.State, r.m.RoomID)
	}
}

// leaveEventOnly adds a room the user left without having been joined at
// the token (a rejected invite, a withdrawn knock): its timeline is the
// leave event alone.
func (b *syncBuilder) leaveEventOnly(m storage.SyncMembership) error {
	evs, err := b.a.db.EventsByNID(b.ctx, []int64{m.EventNID})
	if err != nil || len(evs) == 0 {
		return err
	}
	r := b.result(m, "leave")
	r.timeline = evs
	r.prevBatch = evs[0].StreamPos - 1
	if b.req.useStateAfter {
		r.stateAfter = stateAfter(nil, evs, &b.f.Room.State, m.RoomID)
	}
	return nil
}

// membersAt returns the member events of users in snapshot nid.
func (b *syncBuilder) membersAt(snapshot int64, users []string) ([]*storage.EventRecord, error) {
	keys := make([]storage.StateKey, len(users))
	for i, u := range users {
		keys[i] = storage.StateKey{Type: "m.room.member", StateKey: u}
	}
	knids, err := b.a.db.StateKeyNIDs(b.ctx, keys)
	if err != nil || len(knids) == 0 {
		return nil, err
	}
	ids := make([]int64, 0, len(knids))
	for _, nid := range knids {
		ids = append(ids, nid)
	}
	found, err := b.a.db.SnapshotLookup(b.ctx, snapshot, ids)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	evNIDs := make([]int64, 0, len(found))
	for _, e := range found {
		evNIDs = append(evNIDs, e)
	}
	return b.a.db.EventsByNID(b.ctx, evNIDs)
}

// visible applies history visibility to a room's timeline events. A user
// joined since before the first of them sees them all without a query.
func (b *syncBuilder) visible(m storage.SyncMembership, section string, evs []*storage.EventRecord, check bool) ([]*storage.EventRecord, error) {
	if len(evs) == 0 || !check || section == "join" && m.EventPos < evs[0].StreamPos {
		return evs, nil
	}
	v, err := b.a.loadVisibility(b.ctx, m.RoomNID, b.req.userID, evs[len(evs)-1].StreamPos)
	if err != nil {
		return nil, err
	}
	// Joined now means joined at the sync's position, which the section
	// says; the memberships loaded stop at the last event shown.
	v.joinedNow = section == "join"
	return v.filter(evs), nil
}

// filterTimeline drops the messages of ignored users (not their state
// events, which the spec says to keep) and applies the timeline filter.
func (b *syncBuilder) filterTimeline(roomID string, evs []*storage.EventRecord) []*storage.EventRecord {
	tf := &b.f.Room.Timeline
	if len(b.ignored) == 0 && tf.filtersNothing() {
		return evs
	}
	out := evs[:0:0]
	for _, ev := range evs {
		if ev.StateKey == nil && b.ignored[ev.Sender] {
			continue
		}
		if tf.matchesEvent(roomID, ev.Type, ev.Sender, func() []byte { return []byte(gjson.GetBytes(ev.JSON, "content").Raw) }) {
			out = append(out, ev)
		}
	}
	return out
}

// filterState applies the state filter.
func (b *syncBuilder) filterState(roomID string, evs []*storage.EventRecord) []*storage.EventRecord {
	sf := &b.f.Room.State
	if sf.filtersNothing() {
		return evs
	}
	out := evs[:0:0]
	for _, ev := range evs {
		if sf.matchesEvent(roomID, ev.Type, ev.Sender, func() []byte { return []byte(gjson.GetBytes(ev.JSON, "content").Raw) }) {
			out = append(out, ev)
		}
	}
	if sf.Limit != nil && len(out) > *sf.Limit {
		out = out[len(out)-*sf.Limit:]
	}
	return out
}

// stateAfter is the state at the end of the timeline (use_state_after):
// state, updated by the timeline's state events.
func stateAfter(state, timeline []*storage.EventRecord, sf *RoomEventFilter, roomID string) []*storage.EventRecord {
	all := append(slices.Clone(state), timeline...)
	out := latestPerKey(all)
	return slices.DeleteFunc(out, func(ev *storage.EventRecord) bool {
		return !sf.matchesEvent(roomID, ev.Type, ev.Sender, func() []byte { return []byte(gjson.GetBytes(ev.JSON, "content").Raw) })
	})
}

// notShown returns the events of evs that are not in shown, each once.
func notShown(evs, shown []*storage.EventRecord) []*storage.EventRecord {
	seen := make(map[int64]bool, len(evs)+len(shown))
	for _, ev := range shown {
		seen[ev.NID] = true
	}
	out := evs[:0:0]
	for _, ev := range evs {
		if !seen[ev.NID] {
			seen[ev.NID] = true
			out = append(out, ev)
		}
	}
	return out
}

func onlyState(evs []*storage.EventRecord) []*storage.EventRecord {
	return slices.DeleteFunc(slices.Clone(evs), func(ev *storage.EventRecord) bool { return ev.StateKey == nil })
}

func sortedByPos(evs []*storage.EventRecord) []*storage.EventRecord {
	sortByPos(evs)
	return evs
}

// latestPerKey keeps, among state events in stream order, the last of
// each (type, state key), in stream order.
func latestPerKey(evs []*storage.EventRecord) []*storage.EventRecord {
	last := map[storage.StateKey]int{}
	for i, ev := range evs {
		if ev.StateKey != nil {
			last[storage.StateKey{Type: ev.Type, StateKey: *ev.StateKey}] = i
		}
	}
	out := make([]*storage.EventRecord, 0, len(last))
	for i, ev := range evs {
		if ev.StateKey != nil && last[storage.StateKey{Type: ev.Type, StateKey: *ev.StateKey}] == i {
			out = append(out, ev)
		}
	}
	return out
}

// trimTimeline turns the newest events, newest first, into a timeline of
// at most limit events, oldest first, and says whether events were left
// out.
func trimTimeline(newest []*storage.EventRecord, limit int) ([]*storage.EventRecord, bool) {
	limited := len(newest) > limit
	if limited {
		newest = newest[:limit]
	}
	out := slices.Clone(newest)
	slices.Reverse(out)
	return out, limited
}

func sendersOf(evs []*storage.EventRecord) []string {
	var out []string
	for _, ev := range evs {
		if !slices.Contains(out, ev.Sender) {
			out = append(out, ev.Sender)
		}
	}
	return out
}

func sortByPos(evs []*storage.EventRecord) {
	slices.SortFunc(evs, func(x, y *storage.EventRecord) int {
		switch {
		case x.StreamPos < y.StreamPos:
			return -1
		case x.StreamPos > y.StreamPos:
			return 1
		}
		return 0
	})
}

// strippedTypes are the state events of a room's stripped state
// (client-server-api "Stripped state").
var strippedTypes = []storage.StateKey{
	{Type: "m.room.create"}, {Type: "m.room.name"}, {Type: "m.room.avatar"}, {Type: "m.room.topic"},
	{Type: "m.room.join_rules"}, {Type: "m.room.canonical_alias"}, {Type: "m.room.encryption"},
}

// strippedState returns the stripped state of the room a membership event
// (an invite or a knock) is about: what the event carries in
// unsigned.invite_room_state / knock_room_state (an invite from another
// server), else the room's current state; then the event itself.
func (b *syncBuilder) strippedState(m storage.SyncMembership, unsignedKey string) (*storage.EventRecord, []json.RawMessage, error) {
	evs, err := b.a.db.EventsByNID(b.ctx, []int64{m.EventNID})
	if err != nil || len(evs) == 0 {
		return nil, nil, err
	}
	ev := evs[0]
	var out []json.RawMessage
	if carried := gjson.GetBytes(ev.JSON, "unsigned."+unsignedKey); carried.IsArray() {
		carried.ForEach(func(_, v gjson.Result) bool {
			if v.IsObject() {
				out = append(out, strippedEvent(v.Get("type").Str, v.Get("state_key").Str, v.Get("sender").Str, v.Get("content").Raw))
			}
			return true
		})
	} else {
		state, err := b.a.db.CurrentStateEvents(b.ctx, m.RoomNID, strippedTypes)
		if err != nil {
			return nil, nil, err
		}
		sortByPos(state)
		for _, s := range state {
			out = append(out, strippedEvent(s.Type, *s.StateKey, s.Sender, gjson.GetBytes(s.JSON, "content").Raw))
		}
	}
	return ev, out, nil
}

func strippedEvent(evType, stateKey, sender, content string) json.RawMessage {
	if content == "" {
		content = "{}"
	}
	b := make([]byte, 0, len(content)+len(evType)+len(stateKey)+len(sender)+64)
	b = append(b, `{"content":`...)
	b = append(b, content...)
	b = append(b, `,"sender":`...)
	b = strconv.AppendQuote(b, sender)
	b = append(b, `,"state_key":`...)
	b = strconv.AppendQuote(b, stateKey)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, evType)
	return append(b, '}')
}

// addInvite adds an invited room, unless the inviter is ignored.
func (b *syncBuilder) addInvite(m storage.SyncMembership, rooms *syncRooms) error {
	ev, state, err := b.strippedState(m, "invite_room_state")
	if err != nil || ev == nil || b.ignored[ev.Sender] {
		return err
	}
	opts := newFormatOpts(b.f, false)
	opts.Fields = nil
	state = append(state, opts.Format(ev))
	if rooms.Invite == nil {
		rooms.Invite = map[string]*invitedRoom{}
	}
	rooms.Invite[m.RoomID] = &invitedRoom{InviteState: eventBatch{Events: state}}
	return nil
}

// addKnock adds a room the user knocked on.
func (b *syncBuilder) addKnock(m storage.SyncMembership, rooms *syncRooms) error {
	ev, state, err := b.strippedState(m, "knock_room_state")
	if err != nil || ev == nil {
		return err
	}
	opts := newFormatOpts(b.f, false)
	opts.Fields = nil
	state = append(state, opts.Format(ev))
	if rooms.Knock == nil {
		rooms.Knock = map[string]*knockedRoom{}
	}
	rooms.Knock[m.RoomID] = &knockedRoom{KnockState: eventBatch{Events: state}}
	return nil
}
