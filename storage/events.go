package storage

// Queries on the events table and client transaction IDs
// (migrations/0003_rooms.sql). The roomserver writes events; the read
// functions at the end serve /sync, /messages and the event endpoints.
//
// Orders used by the readers:
//   - stream order: by stream_pos, the global commit order (sync);
//   - topological order: by (depth, stream_pos) (/messages, /context). For
//     local events both orders agree within a room, since a room has one
//     writer at a time and each new event is one deeper than its
//     prev_events. Events without a stream position (rejected, soft-failed,
//     outliers) are in neither; nor are out-of-band membership events (an
//     invite from a room this server is not in), which are outliers with a
//     stream position so that /sync reports the membership.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// ErrEventExists is returned (wrapped) by InsertEvent for a known event ID.
var ErrEventExists = errors.New("event already exists")

// EventRecord is a row of the events table, with its room's ID and version
// and its state key (the reads fill those in from the joined tables).
type EventRecord struct {
	NID         int64
	EventID     string
	RoomNID     int64
	RoomID      string // filled by reads
	RoomVersion string // filled by reads
	Type        string
	// StateKey is nil for a message event (filled by reads); StateKeyNID is
	// its NID (0 for a message event), which InsertEvent uses.
	StateKey       *string
	StateKeyNID    int64
	Sender         string
	Depth          int64
	OriginServerTS int64
	// StreamPos is the event's position in the global stream, 0 when it is
	// not in the timeline (rejected, soft-failed, outlier).
	StreamPos      int64
	StateBeforeNID int64
	StateAfterNID  int64
	Membership     string
	Redacts        string
	Rejected       bool
	SoftFailed     bool
	Outlier        bool
	// RedactedBy is the ID of the redaction applied to the event, "" if
	// none; JSON is then the redacted form with unsigned.redacted_because.
	RedactedBy string
	JSON       []byte
}

// TopoPos is a place in a room's topological order: events are ordered by
// depth, then stream position. It is the position /messages pages by.
type TopoPos struct {
	Depth  int64
	Stream int64
}

// Pos returns the event's place in topological order.
func (e *EventRecord) Pos() TopoPos { return TopoPos{Depth: e.Depth, Stream: e.StreamPos} }

// TopoMax is after every event, TopoMin before every event.
var (
	TopoMax = TopoPos{Depth: 1<<63 - 1, Stream: 1<<63 - 1}
	TopoMin = TopoPos{Depth: -1 << 63, Stream: -1 << 63}
)

// InsertEvent stores ev and returns its NID, or an error wrapping
// ErrEventExists when an event with its ID is stored already. ev.RoomID,
// RoomVersion and StateKey are ignored (RoomNID and StateKeyNID are used).
func (tx *Tx) InsertEvent(ctx context.Context, ev *EventRecord) (int64, error) {
	var nid int64
	err := tx.q.QueryRowContext(ctx, `
		INSERT INTO events (event_id, room_nid, event_type, state_key_nid, sender, depth,
			origin_server_ts, stream_pos, state_before_nid, state_after_nid, membership,
			redacts, rejected, soft_failed, outlier, redacted_by, json)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (event_id) DO NOTHING
		RETURNING event_nid`,
		ev.EventID, ev.RoomNID, ev.Type, nullIfZero(ev.StateKeyNID), ev.Sender, ev.Depth,
		ev.OriginServerTS, nullIfZero(ev.StreamPos), ev.StateBeforeNID, ev.StateAfterNID, ev.Membership,
		ev.Redacts, ev.Rejected, ev.SoftFailed, ev.Outlier, ev.RedactedBy, string(ev.JSON)).Scan(&nid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("insert event %s: %w", ev.EventID, ErrEventExists)
	}
	if err != nil {
		return 0, fmt.Errorf("insert event %s: %w", ev.EventID, err)
	}
	return nid, nil
}

// ApplyRedaction replaces the stored JSON of the event targetNID with its
// redacted form (which should carry unsigned.redacted_because) and records
// which redaction did it.
func (tx *Tx) ApplyRedaction(ctx context.Context, targetNID int64, redactedJSON []byte, redactionID string) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE events SET json = $1, redacted_by = $2 WHERE event_nid = $3`,
		string(redactedJSON), redactionID, targetNID); err != nil {
		return fmt.Errorf("apply redaction %s: %w", redactionID, err)
	}
	return nil
}

// RedactionsOf returns the accepted redactions in the timeline that name
// eventID as their target (a redaction may arrive before its target).
func (db *DB) RedactionsOf(ctx context.Context, eventID string) ([]*EventRecord, error) {
	return redactionsOf(ctx, db.read, eventID)
}

// RedactionsOf is DB.RedactionsOf within tx.
func (tx *Tx) RedactionsOf(ctx context.Context, eventID string) ([]*EventRecord, error) {
	return redactionsOf(ctx, tx.q, eventID)
}

// RedactionsOfAny is RedactionsOf for several targets at once, by target.
func (tx *Tx) RedactionsOfAny(ctx context.Context, eventIDs []string) (map[string][]*EventRecord, error) {
	out := map[string][]*EventRecord{}
	for chunk := range chunks(eventIDs, inChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		recs, err := queryEvents(ctx, tx.q, `WHERE e.redacts IN (`+inList(1, len(chunk))+`) AND e.redacts <> ''
			AND e.event_type = 'm.room.redaction' AND e.stream_pos IS NOT NULL ORDER BY e.stream_pos`, args...)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out[r.Redacts] = append(out[r.Redacts], r)
		}
	}
	return out, nil
}

func redactionsOf(ctx context.Context, q queryer, eventID string) ([]*EventRecord, error) {
	return queryEvents(ctx, q, `WHERE e.redacts = $1 AND e.redacts <> '' AND e.event_type = 'm.room.redaction'
		AND e.stream_pos IS NOT NULL ORDER BY e.stream_pos`, eventID)
}

// eventColumns and eventFrom are the select list and joins every event
// read uses; scanEvent reads a row of them.
const eventColumns = `e.event_nid, e.event_id, e.room_nid, r.room_id, r.room_version, e.event_type,
	sk.state_key, e.state_key_nid, e.sender, e.depth, e.origin_server_ts, e.stream_pos,
	e.state_before_nid, e.state_after_nid, e.membership, e.redacts, e.rejected, e.soft_failed,
	e.outlier, e.redacted_by, e.json`

const eventFrom = ` FROM events e JOIN rooms r ON r.room_nid = e.room_nid
	LEFT JOIN state_keys sk ON sk.state_key_nid = e.state_key_nid `

func scanEvent(rows *sql.Rows) (*EventRecord, error) {
	var (
		ev        EventRecord
		stateKey  sql.NullString
		skNID     sql.NullInt64
		streamPos sql.NullInt64
		js        string
	)
	err := rows.Scan(&ev.NID, &ev.EventID, &ev.RoomNID, &ev.RoomID, &ev.RoomVersion, &ev.Type,
		&stateKey, &skNID, &ev.Sender, &ev.Depth, &ev.OriginServerTS, &streamPos,
		&ev.StateBeforeNID, &ev.StateAfterNID, &ev.Membership, &ev.Redacts, &ev.Rejected, &ev.SoftFailed,
		&ev.Outlier, &ev.RedactedBy, &js)
	if err != nil {
		return nil, err
	}
	if stateKey.Valid {
		ev.StateKey = &stateKey.String
	}
	ev.StateKeyNID = skNID.Int64
	ev.StreamPos = streamPos.Int64
	ev.JSON = []byte(js)
	return &ev, nil
}

// queryEvents runs SELECT eventColumns eventFrom + where.
func queryEvents(ctx context.Context, q queryer, where string, args ...any) ([]*EventRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+eventFrom+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []*EventRecord
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

// EventsByID returns the stored events among ids, in no particular order;
// unknown IDs are left out.
func (db *DB) EventsByID(ctx context.Context, ids []string) ([]*EventRecord, error) {
	return eventsByID(ctx, db.read, ids)
}

// EventsByID is DB.EventsByID within tx.
func (tx *Tx) EventsByID(ctx context.Context, ids []string) ([]*EventRecord, error) {
	return eventsByID(ctx, tx.q, ids)
}

func eventsByID(ctx context.Context, q queryer, ids []string) ([]*EventRecord, error) {
	return eventsIn(ctx, q, "e.event_id", ids)
}

// EventsByNID returns the stored events among nids, in no particular order.
func (db *DB) EventsByNID(ctx context.Context, nids []int64) ([]*EventRecord, error) {
	return eventsByNID(ctx, db.read, nids)
}

// EventsByNID is DB.EventsByNID within tx.
func (tx *Tx) EventsByNID(ctx context.Context, nids []int64) ([]*EventRecord, error) {
	return eventsByNID(ctx, tx.q, nids)
}

func eventsByNID(ctx context.Context, q queryer, nids []int64) ([]*EventRecord, error) {
	return eventsIn(ctx, q, "e.event_nid", nids)
}

// eventsIn returns the stored events whose col is among keys, in no
// particular order.
func eventsIn[K any](ctx context.Context, q queryer, col string, keys []K) ([]*EventRecord, error) {
	var out []*EventRecord
	for chunk := range chunks(keys, inChunk) {
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k
		}
		evs, err := queryEvents(ctx, q, `WHERE `+col+` IN (`+inList(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// InsertTxn records that the client transaction (userID, deviceID,
// endpoint, txnID) in the room produced the event eventNID. endpoint is the
// kind of request ("send", "redact"): the same transaction ID on two
// endpoints is two transactions. Call it in the transaction that stores
// the event, so that the two are durable together.
func (tx *Tx) InsertTxn(ctx context.Context, roomNID int64, userID, deviceID, endpoint, txnID string, eventNID int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		INSERT INTO event_txns (room_nid, user_id, device_id, endpoint, txn_id, event_nid)
		VALUES ($1, $2, $3, $4, $5, $6)`, roomNID, userID, deviceID, endpoint, txnID, eventNID); err != nil {
		return fmt.Errorf("insert transaction ID: %w", err)
	}
	return nil
}

// TxnEvent returns the event a client transaction (see InsertTxn)
// produced in the room, or nil when there was none.
func (tx *Tx) TxnEvent(ctx context.Context, roomNID int64, userID, deviceID, endpoint, txnID string) (*EventRecord, error) {
	// A short statement first: almost every transaction ID is new.
	var nid int64
	err := tx.q.QueryRowContext(ctx, `
		SELECT event_nid FROM event_txns
		WHERE room_nid = $1 AND user_id = $2 AND device_id = $3 AND endpoint = $4 AND txn_id = $5`,
		roomNID, userID, deviceID, endpoint, txnID).Scan(&nid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transaction ID: %w", err)
	}
	evs, err := eventsByNID(ctx, tx.q, []int64{nid})
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// TxnIDs returns, for those of eventIDs that the device (userID, deviceID)
// sent with a transaction ID, event ID → transaction ID: what sync puts in
// unsigned.transaction_id for the sending device.
func (db *DB) TxnIDs(ctx context.Context, userID, deviceID string, eventIDs []string) (map[string]string, error) {
	return txnIDs(ctx, db.read, userID, deviceID, `
		SELECT e.event_id, t.txn_id FROM event_txns t JOIN events e ON e.event_nid = t.event_nid
		WHERE t.user_id = $1 AND t.device_id = $2 AND e.event_id`, eventIDs)
}

// TxnIDsOf is TxnIDs for stored events, by event NID: what
// clientevent.Options.TxnIDs takes. Only events userID sent are looked up.
func (db *DB) TxnIDsOf(ctx context.Context, userID, deviceID string, evs []*EventRecord) (map[int64]string, error) {
	var nids []int64
	for _, ev := range evs {
		if ev.Sender == userID {
			nids = append(nids, ev.NID)
		}
	}
	return txnIDs(ctx, db.read, userID, deviceID, `
		SELECT t.event_nid, t.txn_id FROM event_txns t
		WHERE t.user_id = $1 AND t.device_id = $2 AND t.event_nid`, nids)
}

// txnIDs looks up the transaction IDs of the device's events among keys:
// query selects (key, transaction ID) for the user ($1) and device ($2)
// and ends with the key's column, which " IN (...)" completes.
func txnIDs[K comparable](ctx context.Context, q queryer, userID, deviceID, query string, keys []K) (map[K]string, error) {
	out := make(map[K]string)
	for chunk := range chunks(keys, inChunk) {
		args := []any{userID, deviceID}
		for _, k := range chunk {
			args = append(args, k)
		}
		rows, err := q.QueryContext(ctx, query+` IN (`+inList(3, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("transaction IDs: %w", err)
		}
		for rows.Next() {
			var (
				k   K
				txn string
			)
			if err := rows.Scan(&k, &txn); err != nil {
				rows.Close()
				return nil, fmt.Errorf("transaction IDs: %w", err)
			}
			out[k] = txn
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("transaction IDs: %w", err)
		}
	}
	return out, nil
}

// ---- Reads for /sync, /messages and /context ----

// EventsInRange returns up to limit events of the room with from <
// stream_pos <= to, in stream order: ascending from just after from when
// backwards is false, descending from to when it is true (a timeline of
// the last limit events is EventsInRange(..., true) reversed). limit <= 0
// means no limit.
func (db *DB) EventsInRange(ctx context.Context, roomID string, from, to int64, limit int, backwards bool) ([]*EventRecord, error) {
	order := "ASC"
	if backwards {
		order = "DESC"
	}
	return queryEvents(ctx, db.read, `
		WHERE r.room_id = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 AND NOT e.outlier
		ORDER BY e.stream_pos `+order+limitClause(limit), roomID, from, to)
}

// RoomsWithEventsInRange returns those of roomIDs that have events with
// from < stream_pos <= to (the rooms an incremental sync must look at).
func (db *DB) RoomsWithEventsInRange(ctx context.Context, roomIDs []string, from, to int64) ([]string, error) {
	var out []string
	for len(roomIDs) > 0 {
		n := min(len(roomIDs), inChunk)
		args := []any{from, to}
		for _, id := range roomIDs[:n] {
			args = append(args, id)
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT r.room_id FROM rooms r
			WHERE r.room_id IN (`+inList(3, n)+`) AND EXISTS (
				SELECT 1 FROM events e WHERE e.room_nid = r.room_nid
				AND e.stream_pos > $1 AND e.stream_pos <= $2)`, args...)
		if err != nil {
			return nil, fmt.Errorf("rooms with events: %w", err)
		}
		ids, err := scanStringRows(rows)
		if err != nil {
			return nil, fmt.Errorf("rooms with events: %w", err)
		}
		out = append(out, ids...)
		roomIDs = roomIDs[n:]
	}
	return out, nil
}

// RoomMessages pages through a room's timeline in topological order for
// /messages: up to limit events strictly before from (backwards, newest
// first) or strictly after from (forwards, oldest first). The next page
// starts at the last returned event's Pos(), so pages neither repeat nor
// skip events. Start a backwards walk from the end at TopoMax, a forwards
// walk from the beginning at TopoMin. limit <= 0 means no limit.
func (db *DB) RoomMessages(ctx context.Context, roomID string, from TopoPos, limit int, backwards bool) ([]*EventRecord, error) {
	cond, order := `(e.depth < $2 OR (e.depth = $2 AND e.stream_pos < $3))`, "DESC"
	if !backwards {
		cond, order = `(e.depth > $2 OR (e.depth = $2 AND e.stream_pos > $3))`, "ASC"
	}
	return queryEvents(ctx, db.read, `
		WHERE r.room_id = $1 AND e.stream_pos IS NOT NULL AND NOT e.outlier AND `+cond+`
		ORDER BY e.depth `+order+`, e.stream_pos `+order+limitClause(limit),
		roomID, from.Depth, from.Stream)
}

// TopoPosAt converts a stream position into the topological position of
// the room just after the last of its events at or before streamPos, for
// starting /messages from a sync token: RoomMessages(..., backwards) from
// the result returns that event first. TopoMin when the room has none.
func (db *DB) TopoPosAt(ctx context.Context, roomID string, streamPos int64) (TopoPos, error) {
	var p TopoPos
	err := db.read.QueryRowContext(ctx, `
		SELECT e.depth, e.stream_pos FROM events e JOIN rooms r ON r.room_nid = e.room_nid
		WHERE r.room_id = $1 AND e.stream_pos <= $2 AND NOT e.outlier
		ORDER BY e.stream_pos DESC LIMIT 1`, roomID, streamPos).Scan(&p.Depth, &p.Stream)
	if errors.Is(err, sql.ErrNoRows) {
		return TopoMin, nil
	}
	if err != nil {
		return TopoPos{}, fmt.Errorf("topological position: %w", err)
	}
	// Just after the event: same depth, the next stream position.
	p.Stream++
	return p, nil
}

// MembershipChanges returns the m.room.member events about userID (any
// room) with from < stream_pos <= to, in stream order: the joins, leaves,
// invites, ... a sync between those positions must report.
func (db *DB) MembershipChanges(ctx context.Context, userID string, from, to int64) ([]*EventRecord, error) {
	return queryEvents(ctx, db.read, `
		WHERE e.state_key_nid = (SELECT state_key_nid FROM state_keys
			WHERE event_type = 'm.room.member' AND state_key = $1)
		AND e.stream_pos > $2 AND e.stream_pos <= $3
		ORDER BY e.stream_pos`, userID, from, to)
}

// LatestEventBefore returns the room's last timeline event with stream_pos
// <= pos, or nil when it has none.
func (db *DB) LatestEventBefore(ctx context.Context, roomID string, pos int64) (*EventRecord, error) {
	evs, err := queryEvents(ctx, db.read, `
		WHERE r.room_id = $1 AND e.stream_pos <= $2 AND NOT e.outlier
		ORDER BY e.stream_pos DESC LIMIT 1`, roomID, pos)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// EventsAfterPos returns up to limit timeline events of every room with
// stream_pos > pos, in stream order (the roomserver republishes these
// after a crash).
func (db *DB) EventsAfterPos(ctx context.Context, pos int64, limit int) ([]*EventRecord, error) {
	return queryEvents(ctx, db.read, `
		WHERE e.stream_pos > $1 ORDER BY e.stream_pos`+limitClause(limit), pos)
}

// EventsBeforePos returns up to limit timeline events of every room with
// stream_pos < pos, newest first: history received late (backfill), which
// takes positions below every other, handed out downwards.
func (db *DB) EventsBeforePos(ctx context.Context, pos int64, limit int) ([]*EventRecord, error) {
	return queryEvents(ctx, db.read, `
		WHERE e.stream_pos < $1 ORDER BY e.stream_pos DESC`+limitClause(limit), pos)
}

func limitClause(limit int) string {
	if limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(limit)
}

func scanStringRows(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// nullInt stores 0 as NULL.
func nullIfZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// SetEventStateAfter records the snapshot of the state after a state event
// (known only once the event has its NID).
func (tx *Tx) SetEventStateAfter(ctx context.Context, eventNID, stateAfterNID int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE events SET state_after_nid = $1 WHERE event_nid = $2`, stateAfterNID, eventNID); err != nil {
		return fmt.Errorf("set state after event: %w", err)
	}
	return nil
}

// EventNearTimestamp returns the room's timeline event closest to ts in
// one direction (client-server-api timestamp_to_event, as Synapse answers
// it): forwards, the first event with origin_server_ts >= ts; backwards,
// the last with origin_server_ts <= ts. Events of the same millisecond are
// taken in stream order: the earliest forwards, the latest backwards. Only
// timeline events count (not rejected, soft-failed or outliers); with upTo
// >= 0, only those at stream positions up to upTo (a user who left reads
// the room as it was when they left). nil when there is none.
func (db *DB) EventNearTimestamp(ctx context.Context, roomID string, ts int64, forward bool, upTo int64) (*EventRecord, error) {
	cmp, order := "<=", "DESC"
	if forward {
		cmp, order = ">=", "ASC"
	}
	if upTo < 0 {
		upTo = 1<<63 - 1
	}
	// The events_room_ts index (migrations/0006) answers this with one
	// range scan from ts in the direction asked.
	evs, err := queryEvents(ctx, db.read, `
		WHERE e.room_nid = (SELECT room_nid FROM rooms WHERE room_id = $1)
		AND e.origin_server_ts `+cmp+` $2
		AND e.stream_pos IS NOT NULL AND e.stream_pos <= $3
		AND NOT e.rejected AND NOT e.outlier
		ORDER BY e.origin_server_ts `+order+`, e.stream_pos `+order+` LIMIT 1`,
		roomID, ts, upTo)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// LowestStreamPos returns the lowest stream position of any event, or 0
// when none is below 1: history received late (backfill) takes positions
// below it, so that it sorts before the history already held.
func (tx *Tx) LowestStreamPos(ctx context.Context) (int64, error) {
	var pos int64
	err := tx.q.QueryRowContext(ctx, `SELECT COALESCE(MIN(stream_pos), 0) FROM events`).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("lowest stream position: %w", err)
	}
	return min(pos, 0), nil
}

// MakeHistorical puts a stored outlier into its room's timeline at stream
// position pos (an event received as state or auth chain, later met again
// in the room's history).
func (tx *Tx) MakeHistorical(ctx context.Context, eventNID, pos int64) error {
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE events SET outlier = FALSE, stream_pos = $2 WHERE event_nid = $1`, eventNID, pos); err != nil {
		return fmt.Errorf("make historical: %w", err)
	}
	return nil
}

// OldestTimelineEvent returns the room's timeline event with the lowest
// stream position (nil when it has none): where backfilling continues.
func (db *DB) OldestTimelineEvent(ctx context.Context, roomID string) (*EventRecord, error) {
	evs, err := queryEvents(ctx, db.read, `
		WHERE r.room_id = $1 AND e.stream_pos IS NOT NULL AND NOT e.outlier
		ORDER BY e.stream_pos ASC LIMIT 1`, roomID)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}
