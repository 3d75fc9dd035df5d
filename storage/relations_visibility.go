package storage

// History visibility across many rooms at once, for reads that span rooms
// (search): SyncVisibilityEvents for a set of rooms in one statement per
// chunk of rooms.

import (
	"cmp"
	"context"
	"slices"
)

// visibilityEventsOfRoomsWhere selects the events of VisibilityEventsOfRooms
// in n rooms ($3 ...). The two state keys are a list of two values, not a
// subquery: SQLite guesses a subquery's size, and for some numbers of
// rooms it then walked every event of each room (events_room_stream) rather
// than look the two keys up in each (events_room_state_key). No ORDER BY
// either, which makes it walk the rooms in stream order.
func visibilityEventsOfRoomsWhere(n int) string {
	return `
		WHERE e.room_nid IN (` + inList(3, n) + `) AND e.stream_pos <= $2 AND e.state_key_nid IN (
			(SELECT state_key_nid FROM state_keys WHERE event_type = 'm.room.history_visibility' AND state_key = ''),
			(SELECT state_key_nid FROM state_keys WHERE event_type = 'm.room.member' AND state_key = $1))`
}

// VisibilityEventsOfRooms returns, for each of roomNIDs, what
// SyncVisibilityEvents returns for it (its m.room.history_visibility events
// and userID's member events at or before upto, in stream order), by room
// NID.
func (db *DB) VisibilityEventsOfRooms(ctx context.Context, roomNIDs []int64, userID string, upto int64) (map[int64][]*EventRecord, error) {
	out := make(map[int64][]*EventRecord, len(roomNIDs))
	for chunk := range chunks(roomNIDs, inChunk) {
		args := []any{userID, upto}
		for _, nid := range chunk {
			args = append(args, nid)
		}
		evs, err := queryEvents(ctx, db.read, visibilityEventsOfRoomsWhere(len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			out[ev.RoomNID] = append(out[ev.RoomNID], ev)
		}
	}
	for _, evs := range out {
		slices.SortFunc(evs, func(a, b *EventRecord) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	}
	return out, nil
}
