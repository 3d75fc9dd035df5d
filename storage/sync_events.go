package storage

// Reads of the roomserver's tables (migrations/0003_rooms.sql) shaped for
// /sync, /messages and /context: a user's memberships with their stream
// positions, several rooms' new events at once, the state events of a gap,
// parts of the current state, member counts and the history of the two
// pieces of state history visibility depends on.

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// SyncMembership is a user's current membership of a room.
type SyncMembership struct {
	RoomID      string
	RoomNID     int64
	RoomVersion string
	Membership  string
	EventNID    int64
	// EventPos is the stream position of the member event (0 if it has
	// none, e.g. an outlier invite).
	EventPos int64
	// StateNID is the snapshot of the room's current state.
	StateNID int64
}

// SyncMemberships returns every room where userID has a membership.
func (db *DB) SyncMemberships(ctx context.Context, userID string) ([]SyncMembership, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT r.room_id, r.room_nid, r.room_version, m.membership, m.event_nid, e.stream_pos, r.state_nid
		FROM room_memberships m
		JOIN rooms r ON r.room_nid = m.room_nid
		JOIN events e ON e.event_nid = m.event_nid
		WHERE m.user_id = $1
		ORDER BY r.room_nid`, userID)
	if err != nil {
		return nil, fmt.Errorf("memberships of %q: %w", userID, err)
	}
	defer rows.Close()
	var out []SyncMembership
	for rows.Next() {
		var (
			m   SyncMembership
			pos sql.NullInt64
		)
		if err := rows.Scan(&m.RoomID, &m.RoomNID, &m.RoomVersion, &m.Membership, &m.EventNID, &pos, &m.StateNID); err != nil {
			return nil, fmt.Errorf("memberships of %q: %w", userID, err)
		}
		m.EventPos = pos.Int64
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("memberships of %q: %w", userID, err)
	}
	return out, nil
}

// SyncMembershipAt returns userID's latest member event in the room with a
// stream position at or before pos, or nil when there is none: the
// membership as it was at a sync token.
func (db *DB) SyncMembershipAt(ctx context.Context, roomNID int64, userID string, pos int64) (*EventRecord, error) {
	evs, err := queryEvents(ctx, db.read, `
		WHERE e.state_key_nid = (SELECT state_key_nid FROM state_keys
			WHERE event_type = 'm.room.member' AND state_key = $2)
		AND e.room_nid = $1 AND e.stream_pos <= $3
		ORDER BY e.stream_pos DESC LIMIT 1`, roomNID, userID, pos)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// SyncRoomEvents returns the newest timeline events of each of roomNIDs
// with from < stream_pos <= to, newest first, at most limit in all. An
// incremental sync reads its rooms' new events with one query; a room with
// more new events than the limit is read again on its own.
func (db *DB) SyncRoomEvents(ctx context.Context, roomNIDs []int64, from, to int64, limit int) ([]*EventRecord, error) {
	var out []*EventRecord
	for chunk := range chunks(roomNIDs, inChunk) {
		args := []any{from, to}
		for _, nid := range chunk {
			args = append(args, nid)
		}
		evs, err := queryEvents(ctx, db.read, `
			WHERE e.room_nid IN (`+inList(3, len(chunk))+`)
			AND e.stream_pos > $1 AND e.stream_pos <= $2 AND NOT e.outlier
			ORDER BY e.stream_pos DESC`+limitClause(limit), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// SyncRoomTimeline returns up to limit timeline events of the room with
// from < stream_pos <= to, newest first.
func (db *DB) SyncRoomTimeline(ctx context.Context, roomNID int64, from, to int64, limit int) ([]*EventRecord, error) {
	return queryEvents(ctx, db.read, `
		WHERE e.room_nid = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 AND NOT e.outlier
		ORDER BY e.stream_pos DESC`+limitClause(limit), roomNID, from, to)
}

// SyncRoomPage returns up to limit timeline events of the room for
// /messages, in stream order: with backwards, those with stream_pos <= from
// and > to, newest first; otherwise those with stream_pos > from and <= to,
// oldest first.
func (db *DB) SyncRoomPage(ctx context.Context, roomNID int64, from, to int64, limit int, backwards bool) ([]*EventRecord, error) {
	if backwards {
		return queryEvents(ctx, db.read, `
			WHERE e.room_nid = $1 AND e.stream_pos <= $2 AND e.stream_pos > $3 AND NOT e.outlier
			ORDER BY e.stream_pos DESC`+limitClause(limit), roomNID, from, to)
	}
	return queryEvents(ctx, db.read, `
		WHERE e.room_nid = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 AND NOT e.outlier
		ORDER BY e.stream_pos ASC`+limitClause(limit), roomNID, from, to)
}

// SyncStateEvents returns the room's timeline state events with from <
// stream_pos <= to, in stream order: the state changes of a gap.
func (db *DB) SyncStateEvents(ctx context.Context, roomNID int64, from, to int64) ([]*EventRecord, error) {
	return queryEvents(ctx, db.read, syncStateEventsWhere, roomNID, from, to)
}

// syncStateEventsWhere reads the room's state events of the window from
// events_room_state_stream (migrations/0022), without its messages.
const syncStateEventsWhere = `
	WHERE e.room_nid = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3
	AND e.state_key_nid IS NOT NULL AND NOT e.outlier
	ORDER BY e.stream_pos`

// SyncCurrentState returns the room's current state. With allMembers false
// it leaves out the m.room.member events except those of members
// (lazy-loading).
func (db *DB) SyncCurrentState(ctx context.Context, roomNID int64, allMembers bool, members []string) ([]*EventRecord, error) {
	const join = `JOIN room_state rs ON rs.event_nid = e.event_nid WHERE rs.room_nid = $1`
	if allMembers {
		return queryEvents(ctx, db.read, join, roomNID)
	}
	out, err := queryEvents(ctx, db.read, syncStateWithoutMembersWhere, roomNID)
	if err != nil {
		return nil, err
	}
	for chunk := range chunks(members, inChunk) {
		args := []any{roomNID}
		for _, m := range chunk {
			args = append(args, m)
		}
		evs, err := queryEvents(ctx, db.read, syncMembersWhere(len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// syncStateWithoutMembersWhere selects the room's ($1) current state but
// its member events, filtered by the state key's type before any event is
// read: by the event's type, a lazy-loading sync read the event of every
// member of the room to return the few other state events.
const syncStateWithoutMembersWhere = `WHERE e.event_nid IN (
	SELECT rs.event_nid FROM room_state rs JOIN state_keys rk ON rk.state_key_nid = rs.state_key_nid
	WHERE rs.room_nid = $1 AND rk.event_type <> 'm.room.member')`

// syncMembersWhere selects the room's ($1) current member events of n users
// ($2 ...), found by state key: a condition on the events' type and state
// key made SQLite read every entry of the room's state and its event.
func syncMembersWhere(n int) string {
	return `JOIN room_state rs ON rs.event_nid = e.event_nid
		WHERE rs.room_nid = $1 AND rs.state_key_nid IN (SELECT state_key_nid FROM state_keys
			WHERE event_type = 'm.room.member' AND state_key IN (` + inList(2, n) + `))`
}

// SyncSnapshotState returns the state of snapshot nid as events, leaving
// out the m.room.member events except those of members when allMembers is
// false.
func (db *DB) SyncSnapshotState(ctx context.Context, nid int64, allMembers bool, members []string) ([]*EventRecord, error) {
	q := db.read
	state, err := readSnapshot(ctx, q, nid, nil)
	if err != nil {
		return nil, err
	}
	keyNIDs := make([]int64, 0, len(state))
	for k := range state {
		keyNIDs = append(keyNIDs, k)
	}
	var want []int64
	if allMembers {
		want = make([]int64, 0, len(state))
		for _, e := range state {
			want = append(want, e)
		}
	} else {
		keys, err := stateKeysByNID(ctx, q, keyNIDs)
		if err != nil {
			return nil, err
		}
		wanted := make(map[string]bool, len(members))
		for _, m := range members {
			wanted[m] = true
		}
		for k, e := range state {
			if sk := keys[k]; sk.Type != "m.room.member" || wanted[sk.StateKey] {
				want = append(want, e)
			}
		}
	}
	return eventsByNID(ctx, q, want)
}

// SyncMemberCount is a room's number of joined and invited members.
type SyncMemberCount struct{ Joined, Invited int }

// SyncMemberCounts returns the member counts of roomNIDs in one query.
func (db *DB) SyncMemberCounts(ctx context.Context, roomNIDs []int64) (map[int64]SyncMemberCount, error) {
	out := make(map[int64]SyncMemberCount, len(roomNIDs))
	for chunk := range chunks(roomNIDs, inChunk) {
		args := make([]any, len(chunk))
		for i, nid := range chunk {
			args[i] = nid
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT room_nid, membership, COUNT(*) FROM room_memberships
			WHERE room_nid IN (`+inList(1, len(chunk))+`) AND membership IN ('join', 'invite')
			GROUP BY room_nid, membership`, args...)
		if err != nil {
			return nil, fmt.Errorf("member counts: %w", err)
		}
		for rows.Next() {
			var (
				nid int64
				m   string
				n   int
			)
			if err := rows.Scan(&nid, &m, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("member counts: %w", err)
			}
			c := out[nid]
			if m == "join" {
				c.Joined = n
			} else {
				c.Invited = n
			}
			out[nid] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("member counts: %w", err)
		}
	}
	return out, nil
}

// SyncHeroes returns up to n members of the room other than userID for
// the room summary: joined or invited ones first, in the order they became
// members, else those who left or were banned.
func (db *DB) SyncHeroes(ctx context.Context, roomNID int64, userID string, n int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT m.user_id FROM room_memberships m JOIN events e ON e.event_nid = m.event_nid
		WHERE m.room_nid = $1 AND m.user_id <> $2
		ORDER BY CASE WHEN m.membership IN ('join', 'invite') THEN 0 ELSE 1 END, e.stream_pos
		LIMIT $3`, roomNID, userID, n)
	if err != nil {
		return nil, fmt.Errorf("room heroes: %w", err)
	}
	out, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("room heroes: %w", err)
	}
	return out, nil
}

const visibilityEventsWhere = `
	WHERE e.room_nid = $1 AND e.stream_pos <= $3 AND e.state_key_nid IN (
		SELECT state_key_nid FROM state_keys
		WHERE (event_type = 'm.room.history_visibility' AND state_key = '')
		   OR (event_type = 'm.room.member' AND state_key = $2))`

// SyncVisibilityEvents returns the room's timeline events at or before
// stream position upto that history visibility depends on: its
// m.room.history_visibility events and userID's m.room.member events, in
// stream order. Walking them tells, for any event of the room, the
// visibility setting and the user's membership just before it, for a whole
// page of events at the cost of one query.
func (db *DB) SyncVisibilityEvents(ctx context.Context, roomNID int64, userID string, upto int64) ([]*EventRecord, error) {
	// Sorted here: asked to sort, SQLite walks the room's events in stream
	// order (events_room_stream) rather than sort the few it finds by key
	// (events_room_state_key).
	evs, err := queryEvents(ctx, db.read, visibilityEventsWhere, roomNID, userID, upto)
	slices.SortFunc(evs, func(a, b *EventRecord) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	return evs, err
}

// SyncPositions is where each stream a sync reads stands, read at once so
// that they agree: a sync skips the streams with nothing after its token.
type SyncPositions struct {
	Stream      int64 // the highest committed position
	Receipts    int64 // the last receipt written (any room)
	AccountData int64 // the user's last account data change
	Presence    int64 // the last presence change (any user)
	Membership  int64 // the user's last member event (any room)
}

// SyncPositionsFor reads the positions for userID's sync in one statement
// (one snapshot of the database).
func (db *DB) SyncPositionsFor(ctx context.Context, userID string) (SyncPositions, error) {
	var p SyncPositions
	err := db.read.QueryRowContext(ctx, `
		SELECT
			(SELECT pos FROM stream_counter WHERE id = 1),
			COALESCE((SELECT MAX(stream_pos) FROM receipts), 0),
			COALESCE((SELECT MAX(stream_pos) FROM account_data WHERE user_id = $1), 0),
			COALESCE((SELECT MAX(stream_pos) FROM presence), 0),
			COALESCE((SELECT MAX(e.stream_pos) FROM events e
				WHERE e.state_key_nid = (SELECT state_key_nid FROM state_keys
					WHERE event_type = 'm.room.member' AND state_key = $1)), 0)`, userID).
		Scan(&p.Stream, &p.Receipts, &p.AccountData, &p.Presence, &p.Membership)
	if err != nil {
		return SyncPositions{}, fmt.Errorf("sync positions of %q: %w", userID, err)
	}
	return p, nil
}

// SyncReplacedState returns, for each state event of evs (by event NID),
// the state event it replaced: the room's previous timeline event at the
// same state key. Clients show changes with it (unsigned.prev_content).
func (db *DB) SyncReplacedState(ctx context.Context, evs []*EventRecord) (map[int64]*EventRecord, error) {
	out := map[int64]*EventRecord{}
	q := db.read
	for _, ev := range evs {
		if ev.StateKeyNID == 0 || ev.StreamPos == 0 {
			continue
		}
		prev, err := queryEvents(ctx, q, `
			WHERE e.room_nid = $1 AND e.state_key_nid = $2 AND e.stream_pos < $3 AND NOT e.outlier
			ORDER BY e.stream_pos DESC LIMIT 1`, ev.RoomNID, ev.StateKeyNID, ev.StreamPos)
		if err != nil {
			return nil, err
		}
		if len(prev) > 0 {
			out[ev.NID] = prev[0]
		}
	}
	return out, nil
}
