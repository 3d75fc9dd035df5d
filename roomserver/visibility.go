package roomserver

// History visibility read from state snapshots: the rule itself is in
// visibility_rule.go.

import (
	"context"
	"fmt"

	"github.com/myelin-chat/myelin/storage"
)

// CanUserSee reports whether the user may see the event (false for an
// event that is not in its room's timeline). ErrEventNotFound for an
// unknown event.
func (rs *Roomserver) CanUserSee(ctx context.Context, userID, eventID string) (bool, error) {
	recs, err := rs.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		return false, err
	}
	if len(recs) == 0 {
		return false, fmt.Errorf("event %s: %w", eventID, ErrEventNotFound)
	}
	vis, err := rs.FilterVisible(ctx, userID, recs)
	if err != nil {
		return false, err
	}
	return len(vis) == 1, nil
}

// FilterVisible returns those of the events (from the storage read
// functions, any rooms) that the user may see, in their order. Events not
// in the timeline are dropped.
func (rs *Roomserver) FilterVisible(ctx context.Context, userID string, events []*storage.EventRecord) ([]*storage.EventRecord, error) {
	v := &visibility{rs: rs, userID: userID, snaps: map[int64]VisibilityState{}, joined: map[int64]bool{}}
	keys, err := rs.db.StateKeyNIDs(ctx, []storage.StateKey{
		{Type: "m.room.history_visibility"}, {Type: "m.room.member", StateKey: userID}})
	if err != nil {
		return nil, err
	}
	v.hvKey = keys[storage.StateKey{Type: "m.room.history_visibility"}]
	v.memberKey = keys[storage.StateKey{Type: "m.room.member", StateKey: userID}]
	out := events[:0:0]
	for _, ev := range events {
		ok, err := v.allowed(ctx, ev)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

type visibility struct {
	rs               *Roomserver
	userID           string
	hvKey, memberKey int64
	snaps            map[int64]VisibilityState // by snapshot NID
	joined           map[int64]bool            // room NID → joined now
}

func (v *visibility) allowed(ctx context.Context, ev *storage.EventRecord) (bool, error) {
	if ev.StreamPos == 0 || ev.Rejected || ev.SoftFailed {
		return false, nil
	}
	before, err := v.state(ctx, ev.StateBeforeNID)
	if err != nil {
		return false, err
	}
	var after *VisibilityState
	if StateAfterCounts(ev.Type, ev.StateKey, v.userID) && ev.StateAfterNID != ev.StateBeforeNID {
		st, err := v.state(ctx, ev.StateAfterNID)
		if err != nil {
			return false, err
		}
		after = &st
	}
	switch EventVisibility(before, after) {
	case Allowed:
		return true, nil
	case IfJoinedNow:
		return v.joinedNow(ctx, ev)
	}
	return false, nil
}

// state reads the history visibility and the user's membership of a
// snapshot.
func (v *visibility) state(ctx context.Context, snap int64) (VisibilityState, error) {
	if st, ok := v.snaps[snap]; ok {
		return st, nil
	}
	var st VisibilityState
	var keys []int64
	for _, k := range []int64{v.hvKey, v.memberKey} {
		if k != 0 {
			keys = append(keys, k)
		}
	}
	entries, err := v.rs.db.SnapshotLookup(ctx, snap, keys)
	if err != nil {
		return st, err
	}
	var nids []int64
	for _, e := range entries {
		nids = append(nids, e)
	}
	recs, err := v.rs.db.EventsByNID(ctx, nids)
	if err != nil {
		return st, err
	}
	for _, r := range recs {
		switch r.Type {
		case "m.room.history_visibility":
			// Read from the stored JSON: a redacted event has no content
			// left, and then counts as shared like a missing one.
			st.HistoryVisibility = HistoryVisibilityOf(r.JSON)
		case "m.room.member":
			st.Membership = r.Membership
		}
	}
	v.snaps[snap] = st
	return st, nil
}

// joinedNow reports whether the user's current membership in the event's
// room is join.
func (v *visibility) joinedNow(ctx context.Context, ev *storage.EventRecord) (bool, error) {
	if j, ok := v.joined[ev.RoomNID]; ok {
		return j, nil
	}
	m, err := v.rs.db.Membership(ctx, ev.RoomID, v.userID)
	if err != nil {
		return false, err
	}
	v.joined[ev.RoomNID] = m == "join"
	return m == "join", nil
}
