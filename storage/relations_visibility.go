package storage

// History visibility across many rooms at once, for reads that span rooms
// (search): SyncVisibilityEvents for a set of rooms in one statement per
// chunk of rooms.

import "context"

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
		evs, err := queryEvents(ctx, db.read, `
			WHERE e.state_key_nid IN (
				SELECT state_key_nid FROM state_keys
				WHERE (event_type = 'm.room.history_visibility' AND state_key = '')
				   OR (event_type = 'm.room.member' AND state_key = $1))
			AND e.stream_pos <= $2 AND e.room_nid IN (`+inList(3, len(chunk))+`)
			ORDER BY e.stream_pos`, args...)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			out[ev.RoomNID] = append(out[ev.RoomNID], ev)
		}
	}
	return out, nil
}
