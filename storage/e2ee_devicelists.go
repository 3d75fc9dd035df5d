package storage

// Device list changes (migrations/0014_e2ee.sql, e2ee_device_list_changes):
// who changed their devices or cross-signing keys, and who started or
// stopped sharing a room with a user, between two stream positions. /sync
// (device_lists) and /keys/changes both ask here.

import (
	"context"
	"fmt"
	"maps"
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

// DeviceListStreamID returns the stream_id of the local user userID's last
// m.device_list_update (QueueDeviceListUpdates), 0 if there was none: the
// stream_id other servers are given with the full list, which the next
// update names as its prev_id.
func (db *DB) DeviceListStreamID(ctx context.Context, userID string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `
		SELECT COALESCE(MAX(device_stream_id), 0) FROM e2ee_device_list_changes WHERE user_id = $1`, userID).Scan(&pos)
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
	st, err := db.SyncE2EE(ctx, userID, "", from, to)
	if err != nil {
		return nil, nil, err
	}
	return st.DeviceLists(ctx)
}

// E2EESyncState is what a /sync of one device needs of end-to-end
// encryption, read by SyncE2EE in one statement: on most syncs nothing
// changed and no other query runs.
type E2EESyncState struct {
	// Counts are the device's key counts.
	Counts KeyCounts
	// ToDeviceWaiting: messages wait for the device at or below the
	// position read up to (delivered ones not yet acknowledged included).
	ToDeviceWaiting bool

	db      *DB
	userID  string
	upto    int64
	changed map[string]bool // users whose device list changed, sharing a room
	moves   []memberChange  // member events in the window, in userID's rooms
}

type memberChange struct {
	roomNID          int64
	user, membership string
}

// syncE2EEQuery is SyncE2EE's statement ($1 user, $2 device, $3 since, $4
// upto). The member events of the user's rooms in the window come from
// events_room_state_stream (migrations/0022), without the window's
// messages; "state_key_nid IS NOT NULL" is that partial index's condition,
// which the planners must see to use it.
const syncE2EEQuery = `
	SELECT 'o', algorithm, '', COUNT(*) FROM e2ee_one_time_keys
	WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm
	UNION ALL
	SELECT 'f', algorithm, '', 0 FROM e2ee_fallback_keys
	WHERE user_id = $1 AND device_id = $2 AND used = FALSE
	UNION ALL
	SELECT 't', '', '', COUNT(*) FROM to_device_messages
	WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $4
	UNION ALL
	SELECT 'c', c.user_id, '', 0 FROM e2ee_device_list_changes c
	WHERE c.stream_pos > $3 AND c.stream_pos <= $4 AND (c.user_id = $1 OR EXISTS (
		SELECT 1 FROM room_memberships mine
		JOIN room_memberships theirs ON theirs.room_nid = mine.room_nid
		WHERE mine.user_id = $1 AND mine.membership = 'join'
		  AND theirs.user_id = c.user_id AND theirs.membership = 'join'))
	UNION ALL
	SELECT 'm', k.state_key, e.membership, e.room_nid FROM events e
	JOIN state_keys k ON k.state_key_nid = e.state_key_nid
	WHERE e.room_nid IN (SELECT room_nid FROM room_memberships WHERE user_id = $1)
	  AND e.stream_pos > $3 AND e.stream_pos <= $4 AND e.state_key_nid IS NOT NULL
	  AND e.event_type = 'm.room.member'`

// SyncE2EE reads, in one statement, deviceID's key counts (none for
// deviceID ""), whether to-device messages wait for it up to upto, and
// the raw material of userID's device list changes in (since, upto]: the
// changed device lists of users sharing a room, and the member events of
// userID's rooms (DeviceLists turns them into the answer).
func (db *DB) SyncE2EE(ctx context.Context, userID, deviceID string, since, upto int64) (*E2EESyncState, error) {
	st := &E2EESyncState{Counts: KeyCounts{OneTimeKeys: map[string]int{}, UnusedFallback: []string{}},
		db: db, userID: userID, upto: upto, changed: map[string]bool{}}
	rows, err := db.read.QueryContext(ctx, syncE2EEQuery, userID, deviceID, since, upto)
	if err != nil {
		return nil, fmt.Errorf("end-to-end encryption state of %q %q: %w", userID, deviceID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind, a, b string
			n          int64
		)
		if err := rows.Scan(&kind, &a, &b, &n); err != nil {
			return nil, fmt.Errorf("end-to-end encryption state of %q %q: %w", userID, deviceID, err)
		}
		switch kind {
		case "o":
			st.Counts.OneTimeKeys[a] = int(n)
		case "f":
			st.Counts.UnusedFallback = append(st.Counts.UnusedFallback, a)
		case "t":
			st.ToDeviceWaiting = n > 0
		case "c":
			st.changed[a] = true
		case "m":
			st.moves = append(st.moves, memberChange{roomNID: n, user: a, membership: b})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("end-to-end encryption state of %q %q: %w", userID, deviceID, err)
	}
	slices.Sort(st.Counts.UnusedFallback)
	return st, nil
}

// Upto is the stream position the state was read up to.
func (st *E2EESyncState) Upto() int64 { return st.upto }

// DeviceLists turns the state's raw material into the changed and left
// lists of DeviceListChanges. Only member events need more queries: who is
// in the rooms userID joined or left, and who still shares a room.
func (st *E2EESyncState) DeviceLists(ctx context.Context) (changed, left []string, err error) {
	db, userID := st.db, st.userID
	changedSet := maps.Clone(st.changed)
	// joinedBy: users who may have started sharing a room with userID;
	// leftBy: who may have stopped. Whether they share one now decides,
	// so the order of the member events does not matter.
	joinedBy, leftBy := map[string]bool{}, map[string]bool{}
	ownRooms := map[int64]bool{} // rooms userID joined (true) or left (false) in the window
	for _, m := range st.moves {
		switch {
		case m.user == userID:
			if m.membership == "join" || m.membership == "leave" || m.membership == "ban" {
				ownRooms[m.roomNID] = ownRooms[m.roomNID] || m.membership == "join"
			}
		case m.membership == "join":
			joinedBy[m.user] = true
		case m.membership == "leave" || m.membership == "ban":
			leftBy[m.user] = true
		}
	}
	for roomNID, joined := range ownRooms {
		// Everyone in a room userID joined may be new to it; everyone in a
		// room it left may be gone from its view. Whether they share a room
		// now decides below, so a room joined then left counts as either.
		members, err := db.RoomMembers(ctx, roomNID, "join")
		if err != nil {
			return nil, nil, err
		}
		for _, m := range members {
			if m.UserID == userID {
				continue
			}
			if joined {
				joinedBy[m.UserID] = true
			}
			leftBy[m.UserID] = true
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
