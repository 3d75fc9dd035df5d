package roomserver

// What other servers may read of a room (for the federation endpoints that
// serve events): the server visibility rule (visibility_rule.go) fed from
// state snapshots, whether a server is in a room, and auth chains.

import (
	"context"
	"errors"
	"fmt"

	"github.com/myelin-chat/myelin/storage"
)

// ErrAuthChainTooLarge: an auth chain has more events than the cap given.
var ErrAuthChainTooLarge = errors.New("auth chain too large")

// ServerJoined reports whether one of the server's users is joined to the
// room now (false for an unknown room).
func (rs *Roomserver) ServerJoined(ctx context.Context, roomID, serverName string) (bool, error) {
	room, err := rs.db.Room(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ms, err := rs.db.RoomMembers(ctx, room.NID, "join")
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if UserServer(m.UserID) == serverName {
			return true, nil
		}
	}
	return false, nil
}

// ServerJoinedAt reports whether one of the server's users was joined in
// the state snapshot snap (an EventRecord's StateBeforeNID or
// StateAfterNID).
func (rs *Roomserver) ServerJoinedAt(ctx context.Context, snap int64, serverName string) (bool, error) {
	st, err := rs.serverState(ctx, snap, serverName)
	return st.Joined, err
}

// FilterVisibleToServer returns those of the events (from the storage read
// functions, one room or several) that the server may see, in their order.
// Events not in the timeline (rejected, soft-failed, outliers) are dropped.
func (rs *Roomserver) FilterVisibleToServer(ctx context.Context, serverName string, events []*storage.EventRecord) ([]*storage.EventRecord, error) {
	snaps := map[int64]ServerVisibilityState{}
	joined := map[string]bool{}
	state := func(snap int64) (ServerVisibilityState, error) {
		if st, ok := snaps[snap]; ok {
			return st, nil
		}
		st, err := rs.serverState(ctx, snap, serverName)
		if err == nil {
			snaps[snap] = st
		}
		return st, err
	}
	out := events[:0:0]
	for _, ev := range events {
		if ev.StreamPos == 0 || ev.Rejected || ev.SoftFailed {
			continue
		}
		before, err := state(ev.StateBeforeNID)
		if err != nil {
			return nil, err
		}
		var after *ServerVisibilityState
		if ServerStateAfterCounts(ev.Type, ev.StateKey, serverName) && ev.StateAfterNID != ev.StateBeforeNID {
			st, err := state(ev.StateAfterNID)
			if err != nil {
				return nil, err
			}
			after = &st
		}
		v := ServerEventVisibility(before, after)
		if v == IfJoinedNow {
			j, ok := joined[ev.RoomID]
			if !ok {
				if j, err = rs.ServerJoined(ctx, ev.RoomID, serverName); err != nil {
					return nil, err
				}
				joined[ev.RoomID] = j
			}
			if j {
				v = Allowed
			}
		}
		if v == Allowed {
			out = append(out, ev)
		}
	}
	return out, nil
}

// serverState reads the history visibility of a snapshot and the
// memberships of the server's users in it.
func (rs *Roomserver) serverState(ctx context.Context, snap int64, serverName string) (ServerVisibilityState, error) {
	var st ServerVisibilityState
	state, err := rs.db.Snapshot(ctx, snap)
	if err != nil {
		return st, err
	}
	keyNIDs := make([]int64, 0, len(state))
	for k := range state {
		keyNIDs = append(keyNIDs, k)
	}
	keys, err := rs.db.StateKeysByNID(ctx, keyNIDs)
	if err != nil {
		return st, err
	}
	var nids []int64
	for nid, k := range keys {
		if k.Type == "m.room.history_visibility" && k.StateKey == "" ||
			k.Type == "m.room.member" && UserServer(k.StateKey) == serverName {
			nids = append(nids, state[nid])
		}
	}
	st.HistoryVisibility = "shared"
	if len(nids) == 0 {
		return st, nil
	}
	recs, err := rs.db.EventsByNID(ctx, nids)
	if err != nil {
		return st, err
	}
	for _, r := range recs {
		switch {
		case r.Type == "m.room.history_visibility":
			st.HistoryVisibility = HistoryVisibilityOf(r.JSON)
		case r.Membership == "join":
			st.Joined = true
		case r.Membership == "invite":
			st.Invited = true
		}
	}
	return st, nil
}

// AuthChain returns the auth chain of the events: every event reachable
// through auth_events, the events themselves excluded unless another's
// auth chain holds them, in no particular order. ErrAuthChainTooLarge when
// it would hold more than max events. Auth events this server does not
// hold are left out.
func (rs *Roomserver) AuthChain(ctx context.Context, events []*storage.EventRecord, max int) ([]*storage.EventRecord, error) {
	seen := map[string]bool{}
	var next []string
	queue := func(recs []*storage.EventRecord) error {
		for _, r := range recs {
			ev, err := parseRecord(r)
			if err != nil {
				return err
			}
			for _, id := range ev.AuthEventIDs() {
				if !seen[id] {
					seen[id] = true
					next = append(next, id)
				}
			}
		}
		return nil
	}
	if err := queue(events); err != nil {
		return nil, err
	}
	var out []*storage.EventRecord
	for len(next) > 0 {
		if len(seen) > max {
			return nil, fmt.Errorf("%w: more than %d events", ErrAuthChainTooLarge, max)
		}
		recs, err := rs.db.EventsByID(ctx, next)
		if err != nil {
			return nil, err
		}
		next = nil
		out = append(out, recs...)
		if err := queue(recs); err != nil {
			return nil, err
		}
	}
	return out, nil
}
