package storage

// Room state (migrations/0003_rooms.sql): state key NIDs, state snapshots
// stored as deltas, the materialized current state and memberships.
//
// # Snapshots
//
// A snapshot is a room state: state key NID → event NID. Each is stored as
// a delta over a parent snapshot. Along one line of descent snapshots are
// numbered by seq, 0 being a full snapshot with no parent. The snapshot
// with seq n has as parent the snapshot of its line whose seq is n with the
// lowest set bit cleared (as in a Fenwick tree), and its delta holds every
// change between that parent and itself. So:
//
//   - reading a snapshot reads a chain of at most popcount(n) deltas, at
//     most 1 + log2(n): 11 after 1,000 state changes, 21 after a million;
//   - a state change writes lowbit(n) entries at most, about log2(n)/2 on
//     average: a room of 10,000 members whose members join one by one has
//     about 70,000 entries in all instead of the 50 million of a full copy
//     per event (TestSnapshotDeltasStayCompact measures it). The worst
//     single change, at n a power of two, rewrites the changes since the
//     line began; it is rare (once per doubling) and bounded by the state's
//     size.
//
// Snapshots are immutable; the current state is also kept whole in
// room_state (and memberships in room_memberships), so the hot paths
// (authorising a new event, membership queries) never read a chain.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// StateKey is an (event type, state key) pair. It has the fields of
// pdu.StateKey, so the two convert into each other.
type StateKey struct {
	Type     string
	StateKey string
}

// StateKeyNIDs returns the NIDs of keys, creating the missing ones when
// create is true (otherwise unknown keys are left out of the map).
func (tx *Tx) StateKeyNIDs(ctx context.Context, keys []StateKey, create bool) (map[StateKey]int64, error) {
	if create {
		for _, k := range keys {
			if _, err := tx.q.ExecContext(ctx, `
				INSERT INTO state_keys (event_type, state_key) VALUES ($1, $2)
				ON CONFLICT (event_type, state_key) DO NOTHING`, k.Type, k.StateKey); err != nil {
				return nil, fmt.Errorf("create state key: %w", err)
			}
		}
	}
	return stateKeyNIDs(ctx, tx.q, keys)
}

// StateKeyNIDs returns the NIDs of those keys that have one.
func (db *DB) StateKeyNIDs(ctx context.Context, keys []StateKey) (map[StateKey]int64, error) {
	return stateKeyNIDs(ctx, db.read, keys)
}

func stateKeyNIDs(ctx context.Context, q queryer, keys []StateKey) (map[StateKey]int64, error) {
	out := make(map[StateKey]int64, len(keys))
	for _, k := range keys {
		var nid int64
		err := q.QueryRowContext(ctx, `
			SELECT state_key_nid FROM state_keys WHERE event_type = $1 AND state_key = $2`,
			k.Type, k.StateKey).Scan(&nid)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("state key NID: %w", err)
		}
		out[k] = nid
	}
	return out, nil
}

// StateKeysByNID returns the keys of the given NIDs.
func (db *DB) StateKeysByNID(ctx context.Context, nids []int64) (map[int64]StateKey, error) {
	return stateKeysByNID(ctx, db.read, nids)
}

// StateKeysByNID is DB.StateKeysByNID within tx.
func (tx *Tx) StateKeysByNID(ctx context.Context, nids []int64) (map[int64]StateKey, error) {
	return stateKeysByNID(ctx, tx.q, nids)
}

func stateKeysByNID(ctx context.Context, q queryer, nids []int64) (map[int64]StateKey, error) {
	out := make(map[int64]StateKey, len(nids))
	for len(nids) > 0 {
		n := min(len(nids), inChunk)
		args := make([]any, n)
		for i, id := range nids[:n] {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, `
			SELECT state_key_nid, event_type, state_key FROM state_keys
			WHERE state_key_nid IN (`+inList(1, n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("state keys: %w", err)
		}
		for rows.Next() {
			var nid int64
			var k StateKey
			if err := rows.Scan(&nid, &k.Type, &k.StateKey); err != nil {
				rows.Close()
				return nil, fmt.Errorf("state keys: %w", err)
			}
			out[nid] = k
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("state keys: %w", err)
		}
		nids = nids[n:]
	}
	return out, nil
}

// ---- Current state ----

// CurrentStateEvents returns the events of the room's current state at the
// given keys (keys without an event are left out).
func (tx *Tx) CurrentStateEvents(ctx context.Context, roomNID int64, keys []StateKey) ([]*EventRecord, error) {
	return currentStateEvents(ctx, tx.q, roomNID, keys)
}

// CurrentStateEvents is Tx.CurrentStateEvents outside a transaction.
func (db *DB) CurrentStateEvents(ctx context.Context, roomNID int64, keys []StateKey) ([]*EventRecord, error) {
	return currentStateEvents(ctx, db.read, roomNID, keys)
}

func currentStateEvents(ctx context.Context, q queryer, roomNID int64, keys []StateKey) ([]*EventRecord, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var out []*EventRecord
	for chunk := range chunks(keys, inChunk/2) {
		args := []any{roomNID}
		for _, k := range chunk {
			args = append(args, k.Type, k.StateKey)
		}
		evs, err := queryEvents(ctx, q, currentStateEventsWhere(len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// currentStateEventsWhere selects the room's ($1) current state events at
// n keys ($2, $3 the first's type and state key, ...). The keys' NIDs come
// first, and the room's state entries are then found by primary key: a
// condition on the keys' types and state keys alone made SQLite read every
// entry of the room's state (every member) and its event, on every call
// (the roomserver's auth events, each room request's membership check).
func currentStateEventsWhere(n int) string {
	var sb strings.Builder
	sb.WriteString(`JOIN room_state rs ON rs.event_nid = e.event_nid
		WHERE rs.room_nid = $1 AND rs.state_key_nid IN (SELECT state_key_nid FROM state_keys WHERE `)
	for i := range n {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		fmt.Fprintf(&sb, "(event_type = $%d AND state_key = $%d)", 2*i+2, 2*i+3)
	}
	sb.WriteString(")")
	return sb.String()
}

// CurrentState returns every event of the room's current state; with
// evType not "", only those of that type.
func (db *DB) CurrentState(ctx context.Context, roomNID int64, evType string) ([]*EventRecord, error) {
	if evType != "" {
		return queryEvents(ctx, db.read, `JOIN room_state rs ON rs.event_nid = e.event_nid
			WHERE rs.room_nid = $1 AND e.event_type = $2`, roomNID, evType)
	}
	return queryEvents(ctx, db.read, `JOIN room_state rs ON rs.event_nid = e.event_nid
		WHERE rs.room_nid = $1`, roomNID)
}

// SetCurrentState puts eventNID at the state key in the room's current
// state, or removes the key when eventNID is 0.
func (tx *Tx) SetCurrentState(ctx context.Context, roomNID, stateKeyNID, eventNID int64) error {
	var err error
	if eventNID == 0 {
		_, err = tx.q.ExecContext(ctx, `
			DELETE FROM room_state WHERE room_nid = $1 AND state_key_nid = $2`, roomNID, stateKeyNID)
	} else {
		_, err = tx.q.ExecContext(ctx, `
			INSERT INTO room_state (room_nid, state_key_nid, event_nid) VALUES ($1, $2, $3)
			ON CONFLICT (room_nid, state_key_nid) DO UPDATE SET event_nid = $3`,
			roomNID, stateKeyNID, eventNID)
	}
	if err != nil {
		return fmt.Errorf("set current state: %w", err)
	}
	return nil
}

// SetMembership records the user's current membership in the room (from
// the member event eventNID); membership "" removes it.
func (tx *Tx) SetMembership(ctx context.Context, roomNID int64, userID, membership string, eventNID int64) error {
	var err error
	if membership == "" {
		_, err = tx.q.ExecContext(ctx, `
			DELETE FROM room_memberships WHERE room_nid = $1 AND user_id = $2`, roomNID, userID)
	} else {
		_, err = tx.q.ExecContext(ctx, `
			INSERT INTO room_memberships (room_nid, user_id, membership, event_nid) VALUES ($1, $2, $3, $4)
			ON CONFLICT (room_nid, user_id) DO UPDATE SET membership = $3, event_nid = $4`,
			roomNID, userID, membership, eventNID)
	}
	if err != nil {
		return fmt.Errorf("set membership: %w", err)
	}
	return nil
}

// Membership returns the user's current membership in the room ("" when
// none).
func (db *DB) Membership(ctx context.Context, roomID, userID string) (string, error) {
	var m string
	err := db.read.QueryRowContext(ctx, `
		SELECT m.membership FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
		WHERE r.room_id = $1 AND m.user_id = $2`, roomID, userID).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	return m, nil
}

// RoomsForUser returns the IDs of the rooms where the user's current
// membership is one of memberships (any membership when none is given).
func (db *DB) RoomsForUser(ctx context.Context, userID string, memberships ...string) ([]string, error) {
	args := []any{userID}
	q := `SELECT r.room_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
		WHERE m.user_id = $1`
	if len(memberships) > 0 {
		q += ` AND m.membership IN (` + inList(2, len(memberships)) + `)`
		for _, m := range memberships {
			args = append(args, m)
		}
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY r.room_nid`, args...)
	if err != nil {
		return nil, fmt.Errorf("rooms for user: %w", err)
	}
	ids, err := scanStringRows(rows)
	if err != nil {
		return nil, fmt.Errorf("rooms for user: %w", err)
	}
	return ids, nil
}

// Member is a user's current membership of a room.
type Member struct {
	UserID     string
	Membership string
	EventNID   int64
}

// RoomMembers returns the room's members whose current membership is one
// of memberships (any when none is given), ordered by user ID.
func (db *DB) RoomMembers(ctx context.Context, roomNID int64, memberships ...string) ([]Member, error) {
	return roomMembers(ctx, db.read, roomNID, memberships)
}

// RoomMembers is DB.RoomMembers within tx.
func (tx *Tx) RoomMembers(ctx context.Context, roomNID int64, memberships ...string) ([]Member, error) {
	return roomMembers(ctx, tx.q, roomNID, memberships)
}

func roomMembers(ctx context.Context, q queryer, roomNID int64, memberships []string) ([]Member, error) {
	args := []any{roomNID}
	query := `SELECT user_id, membership, event_nid FROM room_memberships WHERE room_nid = $1`
	if len(memberships) > 0 {
		query += ` AND membership IN (` + inList(2, len(memberships)) + `)`
		for _, m := range memberships {
			args = append(args, m)
		}
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY user_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("room members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.UserID, &m.Membership, &m.EventNID); err != nil {
			return nil, fmt.Errorf("room members: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("room members: %w", err)
	}
	return out, nil
}

// MemberCounts returns how many users are joined to and invited to the room.
func (db *DB) MemberCounts(ctx context.Context, roomNID int64) (joined, invited int, err error) {
	err = db.read.QueryRowContext(ctx, `
		SELECT
			COALESCE(SUM(CASE WHEN membership = 'join' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN membership = 'invite' THEN 1 ELSE 0 END), 0)
		FROM room_memberships WHERE room_nid = $1`, roomNID).Scan(&joined, &invited)
	if err != nil {
		return 0, 0, fmt.Errorf("member counts: %w", err)
	}
	return joined, invited, nil
}

// ---- Snapshots ----

// StateMap is a room state by NIDs: state key NID → event NID.
type StateMap map[int64]int64

type snapshotRow struct {
	nid, parent, seq int64
}

// NewSnapshot stores the state parent + changes as a new snapshot of the
// room and returns its NID. changes maps state key NIDs to event NIDs, 0
// meaning "removed". parentNID 0 means the empty state: the new snapshot
// is then full (seq 0). See the comment at the top of this file.
func (tx *Tx) NewSnapshot(ctx context.Context, roomNID, parentNID int64, changes StateMap) (int64, error) {
	var (
		parent int64
		seq    int64
		delta  StateMap
	)
	if parentNID == 0 {
		delta = StateMap{}
		for k, v := range changes {
			if v != 0 {
				delta[k] = v
			}
		}
	} else {
		chain, err := snapshotChain(ctx, tx.q, parentNID)
		if err != nil {
			return 0, err
		}
		seq = chain[0].seq + 1
		target := seq & (seq - 1) // seq with its lowest set bit cleared
		// chain runs from parentNID (seq-1) down to 0, passing through the
		// snapshot with seq target: merge the deltas above it.
		i := 0
		for i < len(chain) && chain[i].seq > target {
			i++
		}
		if i == len(chain) || chain[i].seq != target {
			return 0, fmt.Errorf("new snapshot: snapshot %d's chain has no seq %d", parentNID, target)
		}
		parent = chain[i].nid
		delta = StateMap{}
		if i > 0 {
			nids := make([]int64, i)
			for j := range i {
				nids[j] = chain[j].nid
			}
			entries, err := snapshotEntries(ctx, tx.q, nids, nil)
			if err != nil {
				return 0, err
			}
			// Oldest (lowest seq) first, so that later changes win.
			for j := i - 1; j >= 0; j-- {
				for k, v := range entries[chain[j].nid] {
					delta[k] = v
				}
			}
		}
		for k, v := range changes {
			delta[k] = v
		}
	}

	var nid int64
	if err := tx.q.QueryRowContext(ctx, `
		INSERT INTO state_snapshots (room_nid, parent_nid, seq) VALUES ($1, $2, $3)
		RETURNING snapshot_nid`, roomNID, parent, seq).Scan(&nid); err != nil {
		return 0, fmt.Errorf("new snapshot: %w", err)
	}
	// Sorted, so that the inserts are in primary key order.
	keys := make([]int64, 0, len(delta))
	for k := range delta {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	const perStatement = 200
	for len(keys) > 0 {
		n := min(len(keys), perStatement)
		q := `INSERT INTO state_snapshot_entries (snapshot_nid, state_key_nid, event_nid) VALUES `
		args := make([]any, 0, 3*n)
		for i, k := range keys[:n] {
			if i > 0 {
				q += ", "
			}
			q += fmt.Sprintf("($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
			args = append(args, nid, k, delta[k])
		}
		if _, err := tx.tx.ExecContext(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("new snapshot entries: %w", err)
		}
		keys = keys[n:]
	}
	return nid, nil
}

// snapshotChain returns the snapshots from nid down to its line's seq 0,
// in decreasing seq.
func snapshotChain(ctx context.Context, q queryer, nid int64) ([]snapshotRow, error) {
	rows, err := q.QueryContext(ctx, `
		WITH RECURSIVE chain (snapshot_nid, parent_nid, seq) AS (
			SELECT snapshot_nid, parent_nid, seq FROM state_snapshots WHERE snapshot_nid = $1
			UNION ALL
			SELECT s.snapshot_nid, s.parent_nid, s.seq
			FROM state_snapshots s JOIN chain c ON s.snapshot_nid = c.parent_nid
		)
		SELECT snapshot_nid, parent_nid, seq FROM chain`, nid)
	if err != nil {
		return nil, fmt.Errorf("snapshot chain: %w", err)
	}
	defer rows.Close()
	var chain []snapshotRow
	for rows.Next() {
		var r snapshotRow
		if err := rows.Scan(&r.nid, &r.parent, &r.seq); err != nil {
			return nil, fmt.Errorf("snapshot chain: %w", err)
		}
		chain = append(chain, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshot chain: %w", err)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("snapshot %d: %w", nid, ErrNotFound)
	}
	sort.Slice(chain, func(a, b int) bool { return chain[a].seq > chain[b].seq })
	if max := bits.Len64(uint64(chain[0].seq)) + 1; len(chain) > max {
		return nil, fmt.Errorf("snapshot %d: chain of %d longer than the bound %d", nid, len(chain), max)
	}
	return chain, nil
}

// snapshotEntries returns the delta entries of the given snapshots,
// restricted to the state key NIDs only when only is not nil.
func snapshotEntries(ctx context.Context, q queryer, nids []int64, only []int64) (map[int64]StateMap, error) {
	args := make([]any, 0, len(nids)+len(only))
	for _, n := range nids {
		args = append(args, n)
	}
	query := `SELECT snapshot_nid, state_key_nid, event_nid FROM state_snapshot_entries
		WHERE snapshot_nid IN (` + inList(1, len(nids)) + `)`
	if only != nil {
		if len(only) == 0 {
			return map[int64]StateMap{}, nil
		}
		query += ` AND state_key_nid IN (` + inList(len(nids)+1, len(only)) + `)`
		for _, k := range only {
			args = append(args, k)
		}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("snapshot entries: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]StateMap, len(nids))
	for rows.Next() {
		var s, k, e int64
		if err := rows.Scan(&s, &k, &e); err != nil {
			return nil, fmt.Errorf("snapshot entries: %w", err)
		}
		m := out[s]
		if m == nil {
			m = StateMap{}
			out[s] = m
		}
		m[k] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshot entries: %w", err)
	}
	return out, nil
}

// Snapshot returns the whole state of snapshot nid (0: the empty state).
func (db *DB) Snapshot(ctx context.Context, nid int64) (StateMap, error) {
	return readSnapshot(ctx, db.read, nid, nil)
}

// Snapshot is DB.Snapshot within tx.
func (tx *Tx) Snapshot(ctx context.Context, nid int64) (StateMap, error) {
	return readSnapshot(ctx, tx.q, nid, nil)
}

// SnapshotLookup returns the entries of snapshot nid at the given state key
// NIDs (keys not in the state are left out).
func (db *DB) SnapshotLookup(ctx context.Context, nid int64, stateKeyNIDs []int64) (StateMap, error) {
	if stateKeyNIDs == nil {
		stateKeyNIDs = []int64{}
	}
	return readSnapshot(ctx, db.read, nid, stateKeyNIDs)
}

// SnapshotLookup is DB.SnapshotLookup within tx.
func (tx *Tx) SnapshotLookup(ctx context.Context, nid int64, stateKeyNIDs []int64) (StateMap, error) {
	if stateKeyNIDs == nil {
		stateKeyNIDs = []int64{}
	}
	return readSnapshot(ctx, tx.q, nid, stateKeyNIDs)
}

func readSnapshot(ctx context.Context, q queryer, nid int64, only []int64) (StateMap, error) {
	if nid == 0 {
		return StateMap{}, nil
	}
	chain, err := snapshotChain(ctx, q, nid)
	if err != nil {
		return nil, err
	}
	nids := make([]int64, len(chain))
	for i, r := range chain {
		nids[i] = r.nid
	}
	entries, err := snapshotEntries(ctx, q, nids, only)
	if err != nil {
		return nil, err
	}
	state := StateMap{}
	for i := len(chain) - 1; i >= 0; i-- { // the full snapshot first
		for k, v := range entries[chain[i].nid] {
			if v == 0 {
				delete(state, k)
			} else {
				state[k] = v
			}
		}
	}
	return state, nil
}

// SnapshotStats describes how a snapshot is stored: the length of its chain
// and the number of delta entries along it (for tests and benchmarks).
func (db *DB) SnapshotStats(ctx context.Context, nid int64) (chainLen, entries int, err error) {
	chain, err := snapshotChain(ctx, db.read, nid)
	if err != nil {
		return 0, 0, err
	}
	for _, r := range chain {
		var n int
		if err := db.read.QueryRowContext(ctx, `
			SELECT COUNT(*) FROM state_snapshot_entries WHERE snapshot_nid = $1`, r.nid).Scan(&n); err != nil {
			return 0, 0, fmt.Errorf("snapshot stats: %w", err)
		}
		entries += n
	}
	return len(chain), entries, nil
}

// RoomSnapshotEntries counts the delta entries stored for all of a room's
// snapshots (for tests and benchmarks).
func (db *DB) RoomSnapshotEntries(ctx context.Context, roomNID int64) (snapshots, entries int, err error) {
	err = db.read.QueryRowContext(ctx, `
		SELECT COUNT(DISTINCT s.snapshot_nid), COUNT(x.snapshot_nid)
		FROM state_snapshots s LEFT JOIN state_snapshot_entries x ON x.snapshot_nid = s.snapshot_nid
		WHERE s.room_nid = $1`, roomNID).Scan(&snapshots, &entries)
	if err != nil {
		return 0, 0, fmt.Errorf("room snapshot entries: %w", err)
	}
	return snapshots, entries, nil
}

// RoomStateAt returns the state of the room after its last timeline event
// at or before stream position pos (for sync: the state at a token), as
// events. The state is empty if the room had no event then.
func (db *DB) RoomStateAt(ctx context.Context, roomID string, pos int64) ([]*EventRecord, error) {
	last, err := db.LatestEventBefore(ctx, roomID, pos)
	if err != nil || last == nil {
		return nil, err
	}
	return db.SnapshotEvents(ctx, last.StateAfterNID)
}

// SnapshotEvents returns the events of snapshot nid's state.
func (db *DB) SnapshotEvents(ctx context.Context, nid int64) ([]*EventRecord, error) {
	state, err := db.Snapshot(ctx, nid)
	if err != nil {
		return nil, err
	}
	nids := make([]int64, 0, len(state))
	for _, e := range state {
		nids = append(nids, e)
	}
	return db.EventsByNID(ctx, nids)
}

// MembershipEvent returns the member event behind the user's current
// membership of the room (nil when none): for a room this server is not
// in, the out-of-band invite or knock, whose sender's server is the one to
// answer it through.
func (db *DB) MembershipEvent(ctx context.Context, roomID, userID string) (*EventRecord, error) {
	evs, err := queryEvents(ctx, db.read, `
		WHERE e.event_nid = (SELECT m.event_nid FROM room_memberships m JOIN rooms r2 ON r2.room_nid = m.room_nid
			WHERE r2.room_id = $1 AND m.user_id = $2)`, roomID, userID)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}
