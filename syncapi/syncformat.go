package syncapi

// Turning the built rooms into the response: events in client format (with
// the requesting device's transaction IDs), summaries, unread counts
// (read in unread.go).

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

func nowTime() time.Time { return time.Now() }

func (b *syncBuilder) format(rooms *syncRooms) error {
	opts := newFormatOpts(b.f, false)
	var timelines []*storage.EventRecord
	for _, r := range b.rooms {
		timelines = append(timelines, r.timeline...)
	}
	ids, err := b.a.db.TxnIDsOf(b.ctx, b.req.userID, b.req.deviceID, timelines)
	if err != nil {
		return err
	}
	opts.TxnIDs = ids

	// prev_content for the state changes shown in timelines.
	if err := opts.LoadReplaced(b.ctx, b.a.db, timelines); err != nil {
		return err
	}
	if err := b.bundleSync(&opts); err != nil {
		return err
	}

	// Summaries go with rooms sent whole and rooms whose members changed.
	var counted []int64
	for _, r := range b.rooms {
		if r.section == "join" && (r.full || hasMemberEvent(r.timeline) || hasMemberEvent(r.state)) {
			counted = append(counted, r.m.RoomNID)
		}
	}
	var counts map[int64]storage.SyncMemberCount
	if len(counted) > 0 {
		if counts, err = b.a.db.SyncMemberCounts(b.ctx, counted); err != nil {
			return err
		}
	}

	for _, r := range b.rooms {
		timeline := timelineBatch{
			Events:    opts.FormatAll(r.timeline),
			Limited:   r.limited,
			PrevBatch: synctoken.Pagination(max(r.prevBatch, 0)),
		}
		var state, after *eventBatch
		if b.req.useStateAfter {
			after = &eventBatch{Events: opts.FormatAll(r.stateAfter)}
		} else {
			state = &eventBatch{Events: opts.FormatAll(r.state)}
		}
		if b.members != nil {
			b.members.record(r.m.RoomID, r.state)
			b.members.record(r.m.RoomID, r.timeline)
			b.members.record(r.m.RoomID, r.stateAfter)
		}
		switch r.section {
		case "join":
			jr := &joinedRoom{
				State: state, StateAfter: after, Timeline: timeline,
				Ephemeral:   eventBatch{Events: nonNil(r.ephemeral)},
				AccountData: eventBatch{Events: nonNil(r.accountData)},
			}
			b.setUnread(jr, r.m.RoomID)
			if c, ok := counts[r.m.RoomNID]; ok || slices.Contains(counted, r.m.RoomNID) {
				heroes := r.heroes
				if !r.full && !hasName(r.timeline) && !hasName(r.state) {
					var err error
					if heroes, err = b.a.db.SyncHeroes(b.ctx, r.m.RoomNID, b.req.userID, 5); err != nil {
						return err
					}
				}
				jr.Summary = &roomSummary{Heroes: heroes, JoinedMemberCount: &c.Joined, InvitedMemberCount: &c.Invited}
			}
			if rooms.Join == nil {
				rooms.Join = map[string]*joinedRoom{}
			}
			rooms.Join[r.m.RoomID] = jr
		case "leave":
			if rooms.Leave == nil {
				rooms.Leave = map[string]*leftRoom{}
			}
			rooms.Leave[r.m.RoomID] = &leftRoom{
				State: state, StateAfter: after, Timeline: timeline,
				AccountData: eventBatch{Events: nonNil(r.accountData)},
			}
		}
	}
	return nil
}

func hasMemberEvent(evs []*storage.EventRecord) bool {
	return slices.ContainsFunc(evs, func(ev *storage.EventRecord) bool { return ev.Type == "m.room.member" })
}

func nonNil(evs []json.RawMessage) []json.RawMessage {
	if evs == nil {
		return []json.RawMessage{}
	}
	return evs
}
