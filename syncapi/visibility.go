package syncapi

// History visibility (client-server-api "Room History Visibility"), for a
// whole list of events at once.
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

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// roomVisibility judges the events of one room for one user.
type roomVisibility struct {
	userID      string
	visibility  []stateAt // m.room.history_visibility, in stream order
	memberships []stateAt // the user's memberships, in stream order
	lastJoin    int64     // stream position of the user's last join, 0 if none
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
			v.visibility = append(v.visibility, stateAt{ev.StreamPos, gjson.GetBytes(ev.JSON, "content.history_visibility").Str})
		} else {
			v.memberships = append(v.memberships, stateAt{ev.StreamPos, ev.Membership})
			if ev.Membership == "join" {
				v.lastJoin = ev.StreamPos
			}
		}
	}
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

// canSee applies the spec's rules to ev.
func (v *roomVisibility) canSee(ev *storage.EventRecord) bool {
	vis, visAt, isVis := before(v.visibility, ev.StreamPos)
	mem, memAt, isMem := before(v.memberships, ev.StreamPos)
	if v.allowed(ev.StreamPos, vis, mem) {
		return true
	}
	// A history_visibility event, and the user's own member event, is
	// visible if the user may see it under the state before or after it.
	if isVis || isMem {
		if isVis {
			vis = visAt
		}
		if isMem {
			mem = memAt
		}
		return v.allowed(ev.StreamPos, vis, mem)
	}
	return false
}

func (v *roomVisibility) allowed(pos int64, visibility, membership string) bool {
	switch visibility {
	case "world_readable":
		return true
	case "invited":
		return membership == "join" || membership == "invite"
	case "joined":
		return membership == "join"
	default: // "shared", unset or not understood
		// Visible to members, and to anyone who joined after the event.
		return membership == "join" || v.lastJoin >= pos
	}
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
