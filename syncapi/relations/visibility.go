package relations

// A user's history visibility in a room as stream position ranges.
//
// Whether a user may see a message event depends only on the room's
// m.room.history_visibility and the user's membership just before it (and
// on whether the user is joined now). Both change at a few positions, so
// between two consecutive changes every message event has the same
// verdict: the positions the user may see are a short list of ranges,
// which queries apply in SQL or in the search index instead of judging
// children one by one. (A state event with a relationship is judged as a
// message: only the user's own member events and history visibility
// events would differ, and those carry no relationships in practice.)

import (
	"context"

	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

// StateChange is a piece of state taking Value at stream position Pos.
type StateChange struct {
	Pos   int64
	Value string
}

// Ranges returns the stream positions, up to upto, of the room's message
// events the user may see under roomserver.EventVisibility, given the
// room's history visibility changes and the user's membership changes in
// stream order, and whether the user is joined now. Adjacent ranges are
// merged.
func Ranges(historyVisibility, membership []StateChange, joinedNow bool, upto int64) []storage.PosRange {
	var out []storage.PosRange
	add := func(after, to int64) {
		if to <= after {
			return
		}
		if n := len(out); n > 0 && out[n-1].Upto == after {
			out[n-1].Upto = to
			return
		}
		out = append(out, storage.PosRange{After: after, Upto: to})
	}
	var st roomserver.VisibilityState
	lo := int64(-1 << 63)
	i, j := 0, 0
	for {
		// The events in (lo, next] have the state st strictly before them.
		next := upto
		if i < len(historyVisibility) && historyVisibility[i].Pos < next {
			next = historyVisibility[i].Pos
		}
		if j < len(membership) && membership[j].Pos < next {
			next = membership[j].Pos
		}
		if roomserver.EventVisibility(st, nil).Allows(joinedNow) {
			add(lo, next)
		}
		if next >= upto {
			return out
		}
		for ; i < len(historyVisibility) && historyVisibility[i].Pos <= next; i++ {
			st.HistoryVisibility = historyVisibility[i].Value
		}
		for ; j < len(membership) && membership[j].Pos <= next; j++ {
			st.Membership = membership[j].Value
		}
		lo = next
	}
}

// ChangesOf splits what storage.SyncVisibilityEvents returns into the
// history visibility changes and the membership changes.
func ChangesOf(evs []*storage.EventRecord) (historyVisibility, membership []StateChange) {
	for _, ev := range evs {
		if ev.Type == "m.room.history_visibility" {
			historyVisibility = append(historyVisibility, StateChange{ev.StreamPos, roomserver.HistoryVisibilityOf(ev.JSON)})
		} else {
			membership = append(membership, StateChange{ev.StreamPos, ev.Membership})
		}
	}
	return historyVisibility, membership
}

// LoadRanges reads the user's visibility of the room up to upto and returns
// it as Ranges, taking the user as joined now when their last membership up
// to upto is join.
func LoadRanges(ctx context.Context, db *storage.DB, roomNID int64, userID string, upto int64) ([]storage.PosRange, error) {
	evs, err := db.SyncVisibilityEvents(ctx, roomNID, userID, upto)
	if err != nil {
		return nil, err
	}
	hv, mem := ChangesOf(evs)
	joined := len(mem) > 0 && mem[len(mem)-1].Value == "join"
	return Ranges(hv, mem, joined, upto), nil
}
