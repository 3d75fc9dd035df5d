package roomserver

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/myelin-chat/myelin/storage"
)

// JoinedServersAt returns the servers with at least one user joined in the
// state snapshot snap (an EventRecord's StateBeforeNID or StateAfterNID),
// sorted: where the federation sender sends an event.
//
// Working it out reads every member event of the snapshot, so the counts
// of joined users per server are cached by snapshot: the federation sender
// asks for every event, the messages between two state changes share one
// snapshot, and JoinedServersAfter derives a member event's from the
// snapshot before it.
func (rs *Roomserver) JoinedServersAt(ctx context.Context, snap int64) ([]string, error) {
	counts, err := rs.joinedCountsAt(ctx, snap)
	if err != nil {
		return nil, err
	}
	return counts.servers(), nil
}

// JoinedServersAfter is JoinedServersAt of the state after the stored
// event rec. For a member event whose state before is cached, it changes
// one user's server's count instead of reading the room's members again,
// so that a burst of joins to a big room does not cost the square of its
// size.
func (rs *Roomserver) JoinedServersAfter(ctx context.Context, rec *storage.EventRecord) ([]string, error) {
	before, after := rec.StateBeforeNID, rec.StateAfterNID
	if after == 0 {
		after = before
	}
	if counts, ok := rs.joinedServers.get(after); ok {
		return counts.servers(), nil
	}
	base, ok := rs.joinedServers.get(before)
	if !ok || after == before || rec.Type != "m.room.member" || rec.StateKey == nil || rec.StateKeyNID == 0 {
		return rs.JoinedServersAt(ctx, after)
	}
	// The state after a member event is the state before it with the
	// event at its key (roomserver persist): only the previous
	// membership at that key is needed.
	prev, err := rs.db.SnapshotLookup(ctx, before, []int64{rec.StateKeyNID})
	if err != nil {
		return nil, err
	}
	wasJoined := false
	if nid := prev[rec.StateKeyNID]; nid != 0 {
		recs, err := rs.db.EventsByNID(ctx, []int64{nid})
		if err != nil {
			return nil, err
		}
		wasJoined = len(recs) == 1 && recs[0].Membership == "join"
	}
	counts := maps.Clone(base)
	server := UserServer(*rec.StateKey)
	if wasJoined {
		if counts[server]--; counts[server] <= 0 {
			delete(counts, server)
		}
	}
	if rec.Membership == "join" && server != "" {
		counts[server]++
	}
	rs.joinedServers.put(after, counts)
	return counts.servers(), nil
}

// joinedCountsAt returns the joined users per server at snap, cached.
func (rs *Roomserver) joinedCountsAt(ctx context.Context, snap int64) (joinedCounts, error) {
	if counts, ok := rs.joinedServers.get(snap); ok {
		return counts, nil
	}
	state, err := rs.db.Snapshot(ctx, snap)
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		// Not cached: a snapshot NID is only final once committed.
		return joinedCounts{}, nil
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
	counts := joinedCounts{}
	if len(nids) > 0 {
		recs, err := rs.db.EventsByNID(ctx, nids)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Membership != "join" || r.StateKey == nil {
				continue
			}
			if s := UserServer(*r.StateKey); s != "" {
				counts[s]++
			}
		}
	}
	rs.joinedServers.put(snap, counts)
	return counts, nil
}

// JoinedServers returns the servers with members joined to the room now.
func (rs *Roomserver) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	return rs.JoinedServersAt(ctx, room.StateNID)
}

// joinedCounts is the number of joined users per server in one state.
// Cached values are never changed.
type joinedCounts map[string]int

// servers returns the servers, sorted, in a new slice.
func (c joinedCounts) servers() []string {
	out := make([]string, 0, len(c))
	for s := range c {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// joinedServersCache maps snapshot NIDs to their joined counts. Committed
// snapshots never change, so entries need no invalidation; the map starts
// again empty when full, which is simple and enough for a cache whose hits
// are the latest snapshots of busy rooms.
type joinedServersCache struct {
	mu sync.Mutex
	m  map[int64]joinedCounts
}

const joinedServersCacheSize = 4096

func (c *joinedServersCache) get(snap int64) (joinedCounts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts, ok := c.m[snap]
	return counts, ok
}

func (c *joinedServersCache) put(snap int64, counts joinedCounts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= joinedServersCacheSize {
		c.m = make(map[int64]joinedCounts)
	}
	c.m[snap] = counts
}
