package syncapi

// History visibility (client-server-api "Room History Visibility"), for a
// whole list of events at once. The rule is the roomserver's
// (roomserver.EventVisibility); this file only gathers what it needs
// cheaply.
//
// Whether a user may see an event depends on two pieces of state at the
// event: m.room.history_visibility and the user's m.room.member. A room
// has few of those events, so one query fetches all of them
// (storage.SyncVisibilityEvents) and each event is then judged by a binary
// search over them in stream order. Within a room, stream order is the
// order the events were added to the timeline, which for a room this
// server writes is the DAG's order.

import (
	"context"
	"sort"

	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// roomVisibility judges the events of one room for one user.
type roomVisibility struct {
	userID      string
	visibility  []stateAt // m.room.history_visibility, in stream order
	memberships []stateAt // the user's memberships, in stream order
	// joinedNow is whether the user is joined to the room now, which lets
	// them see shared history: by default, whether their last membership
	// up to the position loaded is join.
	joinedNow bool
}

type stateAt struct {
	pos   int64
	value string
}

// loadVisibility reads what roomVisibility needs for events at or before
// upto.
func (a *API) loadVisibility(ctx context.Context, roomNID int64, userID string, upto int64) (*roomVisibility, error) {
	evs, err := a.db.SyncVisibilityEvents(ctx, roomNID, userID, upto)
	if err != nil {
		return nil, err
	}
	v := &roomVisibility{userID: userID}
	for _, ev := range evs {
		if ev.Type == "m.room.history_visibility" {
			v.visibility = append(v.visibility, stateAt{ev.StreamPos, roomserver.HistoryVisibilityOf(ev.JSON)})
		} else {
			v.memberships = append(v.memberships, stateAt{ev.StreamPos, ev.Membership})
		}
	}
	v.joinedNow = len(v.memberships) > 0 && v.memberships[len(v.memberships)-1].value == "join"
	return v, nil
}

// before returns the value of the last entry of list strictly before pos
// and the value of the entry at pos, if any.
func before(list []stateAt, pos int64) (prev string, at string, isAt bool) {
	i := sort.Search(len(list), func(i int) bool { return list[i].pos >= pos })
	if i > 0 {
		prev = list[i-1].value
	}
	if i < len(list) && list[i].pos == pos {
		return prev, list[i].value, true
	}
	return prev, "", false
}

// canSee applies the rule to ev.
func (v *roomVisibility) canSee(ev *storage.EventRecord) bool {
	vis, visAt, isVis := before(v.visibility, ev.StreamPos)
	mem, memAt, isMem := before(v.memberships, ev.StreamPos)
	st := roomserver.VisibilityState{HistoryVisibility: vis, Membership: mem}
	var after *roomserver.VisibilityState
	if roomserver.StateAfterCounts(ev.Type, ev.StateKey, v.userID) && (isVis || isMem) {
		a := st
		if isVis {
			a.HistoryVisibility = visAt
		}
		if isMem {
			a.Membership = memAt
		}
		after = &a
	}
	return roomserver.EventVisibility(st, after).Allows(v.joinedNow)
}

// filter returns the events of evs the user may see, keeping their order.
func (v *roomVisibility) filter(evs []*storage.EventRecord) []*storage.EventRecord {
	out := evs[:0:0]
	for _, ev := range evs {
		if v.canSee(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// worldReadable reports whether the room's latest history visibility is
// world_readable.
func (v *roomVisibility) worldReadable() bool {
	return len(v.visibility) > 0 && v.visibility[len(v.visibility)-1].value == "world_readable"
}

// everMember reports whether the user has ever had a membership event in
// the room.
func (v *roomVisibility) everMember() bool { return len(v.memberships) > 0 }
