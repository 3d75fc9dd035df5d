package roomserver

import (
	"context"
	"slices"
)

// JoinedServersAt returns the servers with at least one user joined in the
// state snapshot snap (an EventRecord's StateBeforeNID or StateAfterNID),
// sorted: where the federation sender sends an event.
func (rs *Roomserver) JoinedServersAt(ctx context.Context, snap int64) ([]string, error) {
	state, err := rs.db.Snapshot(ctx, snap)
	if err != nil {
		return nil, err
	}
	keyNIDs := make([]int64, 0, len(state))
	for k := range state {
		keyNIDs = append(keyNIDs, k)
	}
	keys, err := rs.db.StateKeysByNID(ctx, keyNIDs)
	if err != nil {
		return nil, err
	}
	var nids []int64
	for nid, k := range keys {
		if k.Type == "m.room.member" {
			nids = append(nids, state[nid])
		}
	}
	if len(nids) == 0 {
		return nil, nil
	}
	recs, err := rs.db.EventsByNID(ctx, nids)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if r.Membership != "join" || r.StateKey == nil {
			continue
		}
		if s := UserServer(*r.StateKey); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// JoinedServers returns the servers with members joined to the room now.
func (rs *Roomserver) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	return rs.JoinedServersAt(ctx, room.StateNID)
}
