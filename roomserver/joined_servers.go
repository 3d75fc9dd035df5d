package roomserver

import (
	"context"
	"slices"
	"sync"
)

// JoinedServersAt returns the servers with at least one user joined in the
// state snapshot snap (an EventRecord's StateBeforeNID or StateAfterNID),
// sorted: where the federation sender sends an event. The caller must not
// change the slice.
//
// Working it out reads every member event of the snapshot, so the answer
// is cached by snapshot: the federation sender asks for every event, and
// the messages between two state changes share one snapshot.
func (rs *Roomserver) JoinedServersAt(ctx context.Context, snap int64) ([]string, error) {
	if servers, ok := rs.joinedServers.get(snap); ok {
		return servers, nil
	}
	servers, err := rs.joinedServersAt(ctx, snap)
	if err != nil {
		return nil, err
	}
	if servers != nil {
		// Clipped, so that a caller's append copies instead of writing
		// into the cached array.
		servers = slices.Clip(servers)
		rs.joinedServers.put(snap, servers)
	}
	return servers, nil
}

// joinedServersAt is JoinedServersAt without the cache. It returns nil
// for a snapshot not found (or empty), which is not cached: a snapshot
// NID is only final once committed.
func (rs *Roomserver) joinedServersAt(ctx context.Context, snap int64) ([]string, error) {
	state, err := rs.db.Snapshot(ctx, snap)
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		return nil, nil
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
	out := []string{}
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

// joinedServersCache maps snapshot NIDs to their joined servers. Committed
// snapshots never change, so entries need no invalidation; the map starts
// again empty when full, which is simple and enough for a cache whose hits
// are the latest snapshots of busy rooms.
type joinedServersCache struct {
	mu sync.Mutex
	m  map[int64][]string
}

const joinedServersCacheSize = 4096

func (c *joinedServersCache) get(snap int64) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[snap]
	return s, ok
}

func (c *joinedServersCache) put(snap int64, servers []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= joinedServersCacheSize {
		c.m = make(map[int64][]string)
	}
	c.m[snap] = servers
}
