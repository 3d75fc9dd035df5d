package syncapi

// Building a /sync response: which rooms go in which section, and what of
// the user's own data (account data, presence) goes with them. The rooms
// themselves are built in syncroom.go.

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// syncBuilder holds one response being built.
type syncBuilder struct {
	a     *API
	ctx   context.Context
	req   *syncRequest
	f     *Filter
	since int64 // 0 for an initial sync
	upto  int64 // the stream position the response covers
	pos   storage.SyncPositions
	// incremental: a sync with a token and without full_state. It skips
	// the streams that have nothing after the token.
	incremental bool
	// typingSince is the typing serial of the since token, or -1 when the
	// token is from another process (send every room's typing state).
	typingSince int64
	limit       int
	lazy        bool
	ignored     map[string]bool
	members     *sentMembers // lazy-loading: members this device has

	rooms     []*roomResult
	roomIndex map[string]*roomResult
	unread    map[string]*unreadRoom // room ID → unread counts (unread.go)
}

// roomResult is one room of the response before formatting.
type roomResult struct {
	section    string // "join" or "leave"
	m          storage.SyncMembership
	timeline   []*storage.EventRecord // oldest first
	limited    bool
	prevBatch  int64
	state      []*storage.EventRecord
	stateAfter []*storage.EventRecord
	// full is set when the room's whole state was sent (initial sync, new
	// join, full_state): its summary is then always sent.
	full        bool
	heroes      []string
	ephemeral   []json.RawMessage
	accountData []json.RawMessage
}

// buildSync builds the response to req as of now. It also returns the
// rooms the user is joined to, for the notifier.
func (a *API) buildSync(ctx context.Context, req *syncRequest) (*syncResponse, []string, error) {
	b := &syncBuilder{a: a, ctx: ctx, req: req, f: req.filter, typingSince: -1}
	if req.since != nil {
		b.since = req.since.Pos
		if req.since.Instance == a.instance {
			b.typingSince = req.since.Typing
		}
	}
	typingSerial := a.typing.current()
	pos, err := a.db.SyncPositionsFor(ctx, req.userID)
	if err != nil {
		return nil, nil, err
	}
	b.pos, b.upto = pos, pos.Stream
	if b.since > b.upto {
		// A token from the future (another database, or a restored
		// backup): treat it as now rather than sending nothing forever.
		b.since = b.upto
	}
	// First: it may lower b.upto, to hold back to-device messages.
	e2ee, err := b.addE2EE()
	if err != nil {
		return nil, nil, err
	}
	b.limit = b.f.Room.Timeline.timelineLimit(defaultTimelineLimit)
	b.lazy = b.f.Room.State.LazyLoadMembers
	if b.lazy {
		b.members = a.lazyMembers.forDevice(req.userID, req.deviceID, b.since == 0)
	}
	b.incremental = b.since > 0 && !req.fullState
	if b.ignored, err = a.ignoredUsersAt(ctx, req.userID, pos); err != nil {
		return nil, nil, err
	}
	memberships, err := b.membershipsAtUpto()
	if err != nil {
		return nil, nil, err
	}
	var joined []string
	for _, m := range memberships {
		if m.Membership == "join" {
			joined = append(joined, m.RoomID)
		}
	}

	resp := &syncResponse{pos: b.upto, e2eeSections: e2ee}
	rooms := &syncRooms{}
	if b.since == 0 || req.fullState {
		err = b.fullSync(memberships, rooms)
	} else {
		err = b.incrementalSync(memberships, rooms)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := b.addEphemeralAndAccountData(memberships, resp); err != nil {
		return nil, nil, err
	}
	b.addDefaultPushRules(resp)
	if err := b.addUnread(memberships); err != nil {
		return nil, nil, err
	}
	if err := b.addPresence(resp); err != nil {
		return nil, nil, err
	}
	if err := b.format(rooms); err != nil {
		return nil, nil, err
	}
	if len(rooms.Join)+len(rooms.Invite)+len(rooms.Leave)+len(rooms.Knock) > 0 {
		resp.Rooms = rooms
	}
	resp.empty = resp.Rooms == nil && resp.AccountData == nil && resp.Presence == nil && !e2ee.hasNews()
	resp.NextBatch = synctoken.Token{Pos: b.upto, Typing: typingSerial, Instance: a.instance}.String()
	return resp, joined, nil
}

// membershipsAtUpto returns the user's memberships as they were at upto:
// a membership changed after upto (committed after the position was read)
// is replaced by the one before it.
func (b *syncBuilder) membershipsAtUpto() ([]storage.SyncMembership, error) {
	all, err := b.a.memberships(b.ctx, b.req.userID, b.pos, !b.incremental)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, m := range all {
		if m.EventPos > b.upto {
			ev, err := b.a.db.SyncMembershipAt(b.ctx, m.RoomNID, b.req.userID, b.upto)
			if err != nil {
				return nil, err
			}
			if ev == nil {
				continue
			}
			m.Membership, m.EventNID, m.EventPos = ev.Membership, ev.NID, ev.StreamPos
		}
		if b.f.Room.allowsRoom(m.RoomID) {
			out = append(out, m)
		}
	}
	return out, nil
}

// fullSync fills the rooms of an initial sync, or of a full_state one.
func (b *syncBuilder) fullSync(memberships []storage.SyncMembership, rooms *syncRooms) error {
	var forgotten map[string]bool
	for _, m := range memberships {
		switch m.Membership {
		case "join":
			if err := b.fullRoom(m, "join", b.since, b.upto); err != nil {
				return err
			}
		case "invite":
			if err := b.addInvite(m, rooms); err != nil {
				return err
			}
		case "knock":
			if err := b.addKnock(m, rooms); err != nil {
				return err
			}
		case "leave", "ban":
			// Left rooms: with include_leave, and in an incremental
			// full_state sync those left since the token.
			if !b.f.Room.IncludeLeave && !(b.since > 0 && m.EventPos > b.since) {
				continue
			}
			if forgotten == nil {
				ids, err := b.a.db.ForgottenRooms(b.ctx, b.req.userID)
				if err != nil {
					return err
				}
				forgotten = make(map[string]bool, len(ids))
				for _, id := range ids {
					forgotten[id] = true
				}
			}
			if forgotten[m.RoomID] {
				continue
			}
			if err := b.fullRoom(m, "leave", b.since, m.EventPos); err != nil {
				return err
			}
		}
	}
	return nil
}

// incrementalSync fills the rooms of a sync with a since token.
func (b *syncBuilder) incrementalSync(memberships []storage.SyncMembership, rooms *syncRooms) error {
	var throughout []storage.SyncMembership
	for _, m := range memberships {
		changed := m.EventPos > b.since
		switch m.Membership {
		case "join":
			if !changed {
				throughout = append(throughout, m)
				continue
			}
			before, err := b.a.db.SyncMembershipAt(b.ctx, m.RoomNID, b.req.userID, b.since)
			if err != nil {
				return err
			}
			if before == nil || before.Membership != "join" {
				// Newly joined: the whole room, as in an initial sync.
				if err := b.fullRoom(m, "join", 0, b.upto); err != nil {
					return err
				}
				continue
			}
			if err := b.incrementalRoom(m, "join", b.upto, true); err != nil {
				return err
			}
		case "invite":
			if changed {
				if err := b.addInvite(m, rooms); err != nil {
					return err
				}
			}
		case "knock":
			if changed {
				if err := b.addKnock(m, rooms); err != nil {
					return err
				}
			}
		case "leave", "ban":
			if !changed {
				continue
			}
			before, err := b.a.db.SyncMembershipAt(b.ctx, m.RoomNID, b.req.userID, b.since)
			if err != nil {
				return err
			}
			if before != nil && before.Membership == "join" {
				if err := b.incrementalRoom(m, "leave", m.EventPos, true); err != nil {
					return err
				}
			} else if err := b.leaveEventOnly(m); err != nil {
				return err
			}
		}
	}
	return b.incrementalRooms(throughout)
}

// incrementalRooms adds the joined rooms (joined throughout the window)
// that have new events, reading all their new events with one query.
func (b *syncBuilder) incrementalRooms(ms []storage.SyncMembership) error {
	if len(ms) == 0 || b.upto == b.since {
		return nil
	}
	const capEvents = 1000
	nids := make([]int64, len(ms))
	byNID := make(map[int64]storage.SyncMembership, len(ms))
	for i, m := range ms {
		nids[i] = m.RoomNID
		byNID[m.RoomNID] = m
	}
	evs, err := b.a.db.SyncRoomEvents(b.ctx, nids, b.since, b.upto, capEvents)
	if err != nil {
		return err
	}
	if len(evs) == capEvents {
		// Too much happened since the token to read at once: read each
		// room's newest events on its own.
		for _, m := range ms {
			if err := b.incrementalRoom(m, "join", b.upto, false); err != nil {
				return err
			}
		}
		return nil
	}
	perRoom := map[int64][]*storage.EventRecord{}
	for _, ev := range evs {
		perRoom[ev.RoomNID] = append(perRoom[ev.RoomNID], ev)
	}
	for _, nid := range nids {
		if newest := perRoom[nid]; len(newest) > 0 {
			if err := b.incrementalTimeline(byNID[nid], "join", newest, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// result returns the room's result, adding it when absent.
func (b *syncBuilder) result(m storage.SyncMembership, section string) *roomResult {
	if r := b.roomIndex[m.RoomID]; r != nil {
		return r
	}
	if b.roomIndex == nil {
		b.roomIndex = map[string]*roomResult{}
	}
	r := &roomResult{section: section, m: m, prevBatch: b.upto}
	b.rooms = append(b.rooms, r)
	b.roomIndex[m.RoomID] = r
	return r
}

// addEphemeralAndAccountData adds typing, receipts and account data, which
// can bring into the response joined rooms without new events.
func (b *syncBuilder) addEphemeralAndAccountData(memberships []storage.SyncMembership, resp *syncResponse) error {
	var joined []storage.SyncMembership
	var joinedIDs []string
	for _, m := range memberships {
		if m.Membership == "join" {
			joined = append(joined, m)
			joinedIDs = append(joinedIDs, m.RoomID)
		}
	}
	eph := &b.f.Room.Ephemeral
	if eph.matches("m.typing", "") {
		for _, m := range joined {
			if !allowsRoom(eph.Rooms, eph.NotRooms, m.RoomID) {
				continue
			}
			var users []string
			changed := false
			if b.since == 0 || b.req.fullState {
				users = b.a.typing.typingNow(m.RoomID)
				changed = len(users) > 0
			} else {
				users, changed = b.a.typing.since(m.RoomID, b.typingSince)
			}
			if changed {
				users = slices.DeleteFunc(users, func(u string) bool { return !eph.matches("m.typing", u) })
				r := b.result(m, "join")
				r.ephemeral = append(r.ephemeral, typingEvent(users))
			}
		}
	}
	if eph.matches("m.receipt", "") && len(joinedIDs) > 0 && !(b.incremental && b.pos.Receipts <= b.since) {
		receipts, err := b.a.db.ReceiptsSince(b.ctx, joinedIDs, b.since, b.upto)
		if err != nil {
			return err
		}
		byRoom := map[string][]storage.Receipt{}
		for _, rc := range receipts {
			if rc.Type == receiptReadPrivate && rc.UserID != b.req.userID {
				continue // private receipts are for their sender only
			}
			if !eph.matches("m.receipt", rc.UserID) {
				continue
			}
			byRoom[rc.RoomID] = append(byRoom[rc.RoomID], rc)
		}
		for _, m := range joined {
			if rs := byRoom[m.RoomID]; len(rs) > 0 && allowsRoom(eph.Rooms, eph.NotRooms, m.RoomID) {
				r := b.result(m, "join")
				r.ephemeral = append(r.ephemeral, receiptEvent(rs))
			}
		}
	}

	if b.incremental && b.pos.AccountData <= b.since {
		return nil
	}
	data, err := b.a.db.AccountDataSince(b.ctx, b.req.userID, b.since, b.upto)
	if err != nil {
		return err
	}
	var global []json.RawMessage
	for _, ad := range data {
		if ad.RoomID == "" {
			if b.f.AccountData.matches(ad.Type, "") {
				global = append(global, accountDataEvent(ad))
			}
			continue
		}
		rf := &b.f.Room.AccountData
		if !rf.matchesEvent(ad.RoomID, ad.Type, "", nil) {
			continue
		}
		i := slices.IndexFunc(memberships, func(m storage.SyncMembership) bool { return m.RoomID == ad.RoomID })
		if i < 0 {
			continue
		}
		m := memberships[i]
		var r *roomResult
		switch {
		case m.Membership == "join":
			r = b.result(m, "join")
		default:
			// Left rooms carry their account data only when they are in
			// the response anyway.
			if r = b.roomIndex[ad.RoomID]; r == nil {
				continue
			}
		}
		r.accountData = append(r.accountData, accountDataEvent(ad))
	}
	if len(global) > 0 {
		resp.AccountData = &eventBatch{Events: global}
	}
	return nil
}

func typingEvent(users []string) json.RawMessage {
	if users == nil {
		users = []string{}
	}
	b, _ := json.Marshal(map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
	return b
}

// receiptEvent builds the m.receipt event of a room's receipts.
func receiptEvent(rs []storage.Receipt) json.RawMessage {
	type receipt struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id,omitempty"`
	}
	content := map[string]map[string]map[string]receipt{}
	for _, rc := range rs {
		byType := content[rc.EventID]
		if byType == nil {
			byType = map[string]map[string]receipt{}
			content[rc.EventID] = byType
		}
		byUser := byType[rc.Type]
		if byUser == nil {
			byUser = map[string]receipt{}
			byType[rc.Type] = byUser
		}
		byUser[rc.UserID] = receipt{TS: rc.TS, ThreadID: rc.ThreadID}
	}
	b, _ := json.Marshal(map[string]any{"type": "m.receipt", "content": content})
	return b
}

func accountDataEvent(ad storage.AccountData) json.RawMessage {
	b := make([]byte, 0, len(ad.Content)+len(ad.Type)+32)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, ad.Type)
	b = append(b, `,"content":`...)
	b = append(b, ad.Content...)
	return append(b, '}')
}

// addPresence adds the presence of the user and of those sharing a room
// with them.
func (b *syncBuilder) addPresence(resp *syncResponse) error {
	pf := &b.f.Presence
	if !pf.matches("m.presence", "") || b.incremental && b.pos.Presence <= b.since {
		return nil
	}
	ps, err := b.a.db.PresenceVisibleTo(b.ctx, b.req.userID, b.since, b.upto)
	if err != nil {
		return err
	}
	var events []json.RawMessage
	now := nowTime()
	for i := range ps {
		p := &ps[i]
		if !pf.matches("m.presence", p.UserID) {
			continue
		}
		ev, _ := json.Marshal(struct {
			Type    string          `json:"type"`
			Sender  string          `json:"sender"`
			Content presenceContent `json:"content"`
		}{"m.presence", p.UserID, makePresenceContent(p, now)})
		events = append(events, ev)
	}
	if pf.Limit != nil && len(events) > *pf.Limit {
		events = events[len(events)-*pf.Limit:]
	}
	if len(events) > 0 {
		resp.Presence = &eventBatch{Events: events}
	}
	return nil
}
