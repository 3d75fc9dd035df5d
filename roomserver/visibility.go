package roomserver

import (
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// History visibility (client-server-api "Room History Visibility", "Server
// behaviour"): whether a user may see an event depends on the room state
// at that event:
//
//  1. history_visibility world_readable: allow;
//  2. the user's membership was join: allow;
//  3. shared, and the user is joined to the room now: allow. The spec says
//     "joined the room at any point after the event"; as Synapse does (it
//     treats a user who is no longer joined as peeking), a user who joined
//     and then left keeps only what rules 1, 2 and 4 give them, so that
//     after leaving they see neither what was sent after they left nor the
//     history from before their join ("After a user has left a room, they
//     may see any events which they were allowed to see before they left
//     the room, but no events received after they left");
//  4. the user's membership was invite and history_visibility invited:
//     allow;
//  5. otherwise deny.
//
// A missing or unknown history_visibility counts as shared. For
// m.room.history_visibility events, and for the user's own m.room.member
// events, the state before or the state after the event may allow.

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
	v := &visibility{rs: rs, userID: userID, snaps: map[int64]visState{}, joined: map[int64]bool{}}
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

// visState is what visibility needs of a state: the history visibility
// and the user's membership.
type visState struct {
	visibility, membership string
}

type visibility struct {
	rs               *Roomserver
	userID           string
	hvKey, memberKey int64
	snaps            map[int64]visState // by snapshot NID
	joined           map[int64]bool     // room NID → joined now
}

func (v *visibility) allowed(ctx context.Context, ev *storage.EventRecord) (bool, error) {
	if ev.StreamPos == 0 || ev.Rejected || ev.SoftFailed {
		return false, nil
	}
	ok, err := v.allowedAt(ctx, ev, ev.StateBeforeNID)
	if ok || err != nil {
		return ok, err
	}
	special := ev.StateKey != nil && (ev.Type == "m.room.history_visibility" ||
		ev.Type == "m.room.member" && *ev.StateKey == v.userID)
	if special && ev.StateAfterNID != ev.StateBeforeNID {
		return v.allowedAt(ctx, ev, ev.StateAfterNID)
	}
	return false, nil
}

func (v *visibility) allowedAt(ctx context.Context, ev *storage.EventRecord, snap int64) (bool, error) {
	st, err := v.state(ctx, snap)
	if err != nil {
		return false, err
	}
	switch {
	case st.visibility == "world_readable":
		return true, nil
	case st.membership == "join":
		return true, nil
	case st.visibility == "shared":
		return v.joinedNow(ctx, ev)
	case st.visibility == "invited" && st.membership == "invite":
		return true, nil
	}
	return false, nil
}

// state reads the history visibility and the user's membership of a
// snapshot.
func (v *visibility) state(ctx context.Context, snap int64) (visState, error) {
	if st, ok := v.snaps[snap]; ok {
		return st, nil
	}
	st := visState{visibility: "shared"}
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
			switch hv := gjson.GetBytes(r.JSON, "content.history_visibility").String(); hv {
			case "world_readable", "shared", "invited", "joined":
				st.visibility = hv
			}
		case "m.room.member":
			st.membership = r.Membership
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
