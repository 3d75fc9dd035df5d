package storage

// Device list changes (migrations/0012_e2ee.sql, e2ee_device_list_changes):
// who changed their devices or cross-signing keys, and who started or
// stopped sharing a room with a user, between two stream positions. /sync
// (device_lists) and /keys/changes both ask here.

import (
	"context"
	"fmt"
	"slices"
)

// MarkDeviceListChanged records that userID's device list changed, at a new
// stream position, which it returns.
func (tx *Tx) MarkDeviceListChanged(ctx context.Context, userID string) (int64, error) {
	pos, err := tx.NextStreamPos(ctx)
	if err != nil {
		return 0, err
	}
	_, err = tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_device_list_changes (user_id, stream_pos) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET stream_pos = excluded.stream_pos`, userID, pos)
	if err != nil {
		return 0, fmt.Errorf("mark the device list of %q changed: %w", userID, err)
	}
	return pos, nil
}

// DeviceListStreamID returns the position of userID's last device list
// change, 0 if it never changed: the stream_id other servers are given.
func (db *DB) DeviceListStreamID(ctx context.Context, userID string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `
		SELECT COALESCE(MAX(stream_pos), 0) FROM e2ee_device_list_changes WHERE user_id = $1`, userID).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("device list stream ID of %q: %w", userID, err)
	}
	return pos, nil
}

// DeviceListChanges tells userID whose device lists to look at again after
// the stream positions (from, to]:
//
//   - changed: users who share a room with userID now (joined, both) and
//     whose device list changed, userID included; and users who started
//     sharing a room with userID (they joined one of userID's rooms, or
//     userID joined one of theirs), since userID's client may hold an old
//     list of theirs;
//   - left: users who stopped sharing any room with userID (a leave, kick
//     or ban on either side).
//
// Sharing is judged on the memberships as they are now, as Synapse does: a
// user who joined and left within the window is "left". Both lists are
// sorted and disjoint.
func (db *DB) DeviceListChanges(ctx context.Context, userID string, from, to int64) (changed, left []string, err error) {
	if to <= from {
		return nil, nil, nil
	}
	changedSet := map[string]bool{}
	rows, err := db.read.QueryContext(ctx, `
		SELECT c.user_id FROM e2ee_device_list_changes c
		WHERE c.stream_pos > $2 AND c.stream_pos <= $3 AND (c.user_id = $1 OR EXISTS (
			SELECT 1 FROM room_memberships mine
			JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid
			WHERE mine.user_id = $1 AND mine.membership = 'join'
			  AND theirs.user_id = c.user_id AND theirs.membership = 'join'))`, userID, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("device list changes for %q: %w", userID, err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("device list changes for %q: %w", userID, err)
		}
		changedSet[u] = true
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("device list changes for %q: %w", userID, err)
	}

	// Membership changes in the window, in the rooms userID is or was in.
	type memberChange struct {
		roomNID          int64
		user, membership string
	}
	var moves []memberChange
	rows, err = db.read.QueryContext(ctx, `
		SELECT e.room_nid, k.state_key, e.membership FROM events e
		JOIN state_keys k ON k.state_key_nid = e.state_key_nid
		WHERE e.room_nid IN (SELECT room_nid FROM room_memberships WHERE user_id = $1)
		  AND e.stream_pos > $2 AND e.stream_pos <= $3 AND e.event_type = 'm.room.member'
		ORDER BY e.stream_pos`, userID, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("membership changes for %q: %w", userID, err)
	}
	for rows.Next() {
		var m memberChange
		if err := rows.Scan(&m.roomNID, &m.user, &m.membership); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("membership changes for %q: %w", userID, err)
		}
		moves = append(moves, m)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("membership changes for %q: %w", userID, err)
	}

	// joinedBy: users who (may have) started sharing a room; leftBy: who
	// (may have) stopped. Whether they share one now decides.
	joinedBy, leftBy := map[string]bool{}, map[string]bool{}
	ownRooms := map[int64]string{} // rooms userID joined or left: its last move
	for _, m := range moves {
		switch {
		case m.user == userID:
			ownRooms[m.roomNID] = m.membership
		case m.membership == "join":
			joinedBy[m.user] = true
		case m.membership == "leave" || m.membership == "ban":
			leftBy[m.user] = true
		}
	}
	for roomNID, membership := range ownRooms {
		if membership != "join" && membership != "leave" && membership != "ban" {
			continue
		}
		// Everyone in a room userID joined may be new to it; everyone in a
		// room it left may be gone from its view.
		members, err := db.RoomMembers(ctx, roomNID, "join")
		if err != nil {
			return nil, nil, err
		}
		for _, m := range members {
			if m.UserID == userID {
				continue
			}
			if membership == "join" {
				joinedBy[m.UserID] = true
			} else {
				leftBy[m.UserID] = true
			}
		}
	}
	if len(joinedBy)+len(leftBy) > 0 {
		candidates := make([]string, 0, len(joinedBy)+len(leftBy))
		for u := range joinedBy {
			candidates = append(candidates, u)
		}
		for u := range leftBy {
			if !joinedBy[u] {
				candidates = append(candidates, u)
			}
		}
		sharing, err := db.sharingARoom(ctx, userID, candidates)
		if err != nil {
			return nil, nil, err
		}
		for u := range joinedBy {
			if sharing[u] {
				changedSet[u] = true
			}
		}
		for u := range leftBy {
			if !sharing[u] && !changedSet[u] {
				left = append(left, u)
			}
		}
	}
	for u := range changedSet {
		changed = append(changed, u)
	}
	slices.Sort(changed)
	slices.Sort(left)
	return changed, left, nil
}

// sharingARoom returns which of userIDs are joined to a room userID is
// joined to.
func (db *DB) sharingARoom(ctx context.Context, userID string, userIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	for chunk := range chunks(userIDs, inChunk) {
		args := []any{userID}
		for _, u := range chunk {
			args = append(args, u)
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT DISTINCT theirs.user_id FROM room_memberships mine
			JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid
			WHERE mine.user_id = $1 AND mine.membership = 'join' AND theirs.membership = 'join'
			  AND theirs.user_id IN (`+inList(2, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("users sharing a room with %q: %w", userID, err)
		}
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return nil, fmt.Errorf("users sharing a room with %q: %w", userID, err)
			}
			out[u] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("users sharing a room with %q: %w", userID, err)
		}
	}
	return out, nil
}
