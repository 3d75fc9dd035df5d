package storage

// Queries on event_relations and event_threads
// (migrations/0012_relations.sql): writing the relations the roomserver's
// output stream delivers, deleting them on redaction, and the reads of
// /relations, /threads and the bundled aggregations.
//
// Reads take the part of the room's history the reader may see as stream
// position ranges (PosRange, computed from history visibility by the
// caller), so that visibility is applied in the query itself: counts are
// right and a page is filled by one statement, however many children the
// reader may not see.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Relation is a row of event_relations: a child event and the parent its
// m.relates_to names.
type Relation struct {
	EventNID       int64
	EventID        string
	RoomNID        int64
	RelatesTo      string
	RelType        string
	EventType      string
	Sender         string
	StreamPos      int64
	OriginServerTS int64
	// AggregationKey is m.annotation's key, "" for other relationships.
	AggregationKey string
}

// RelThread is the rel_type of thread replies, which event_threads tracks.
const RelThread = "m.thread"

// InsertRelation records r, and for a thread reply moves its thread's
// latest activity. Recording the same event twice keeps the first row, so
// a redelivered bus message is harmless.
func (tx *Tx) InsertRelation(ctx context.Context, r Relation) error {
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO event_relations (event_nid, event_id, room_nid, relates_to, rel_type, event_type,
			sender, stream_pos, origin_server_ts, aggregation_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (event_nid) DO NOTHING`,
		r.EventNID, r.EventID, r.RoomNID, r.RelatesTo, r.RelType, r.EventType, r.Sender, r.StreamPos,
		r.OriginServerTS, r.AggregationKey)
	if err != nil {
		return fmt.Errorf("insert relation of %s: %w", r.EventID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 || r.RelType != RelThread {
		return nil
	}
	if _, err := tx.q.ExecContext(ctx, `
		INSERT INTO event_threads (room_nid, root_id, latest_pos) VALUES ($1, $2, $3)
		ON CONFLICT (room_nid, root_id) DO UPDATE SET latest_pos = CASE
			WHEN excluded.latest_pos > event_threads.latest_pos THEN excluded.latest_pos
			ELSE event_threads.latest_pos END`, r.RoomNID, r.RelatesTo, r.StreamPos); err != nil {
		return fmt.Errorf("update thread %s: %w", r.RelatesTo, err)
	}
	return nil
}

// DeleteRelation removes the relation of the event eventNID (once the
// event is redacted its relationship is broken), and for a thread reply
// moves its thread's latest activity back to the newest remaining reply,
// or drops the thread when none remains. Deleting a relation that is not
// there does nothing.
func (tx *Tx) DeleteRelation(ctx context.Context, eventNID int64) error {
	var roomNID int64
	var parent, relType string
	err := tx.q.QueryRowContext(ctx, `
		DELETE FROM event_relations WHERE event_nid = $1 RETURNING room_nid, relates_to, rel_type`, eventNID).
		Scan(&roomNID, &parent, &relType)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete relation of event %d: %w", eventNID, err)
	}
	if relType != RelThread {
		return nil
	}
	if _, err := tx.q.ExecContext(ctx, `
		UPDATE event_threads SET latest_pos = (
			SELECT MAX(stream_pos) FROM event_relations
			WHERE relates_to = $2 AND rel_type = 'm.thread' AND room_nid = $1)
		WHERE room_nid = $1 AND root_id = $2`, roomNID, parent); err != nil {
		return fmt.Errorf("update thread %s: %w", parent, err)
	}
	if _, err := tx.q.ExecContext(ctx, `
		DELETE FROM event_threads WHERE room_nid = $1 AND root_id = $2 AND latest_pos IS NULL`, roomNID, parent); err != nil {
		return fmt.Errorf("update thread %s: %w", parent, err)
	}
	return nil
}

// PosRange is the stream positions p with After < p <= Upto.
type PosRange struct{ After, Upto int64 }

// AllPositions is the range of every stream position.
var AllPositions = []PosRange{{After: -1 << 63, Upto: 1<<63 - 1}}

// posCondition returns an SQL condition that col lies in one of ranges,
// adding its parameters to args ("FALSE"-like for no range, nothing to
// check for AllPositions).
func posCondition(col string, ranges []PosRange, args *[]any) string {
	if len(ranges) == 0 {
		return "(1 = 0)"
	}
	if len(ranges) == 1 && ranges[0] == AllPositions[0] {
		return "(1 = 1)"
	}
	var sb strings.Builder
	sb.WriteByte('(')
	for i, r := range ranges {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		*args = append(*args, r.After, r.Upto)
		n := len(*args)
		fmt.Fprintf(&sb, "(%s > $%d AND %s <= $%d)", col, n-1, col, n)
	}
	sb.WriteByte(')')
	return sb.String()
}

// notInCondition returns "AND col NOT IN (...)" for values, adding them to
// args, or "" when there are none.
func notInCondition(col string, values []string, args *[]any) string {
	if len(values) == 0 {
		return ""
	}
	first := len(*args) + 1
	for _, v := range values {
		*args = append(*args, v)
	}
	return " AND " + col + " NOT IN (" + inList(first, len(values)) + ")"
}

// RelationsQuery asks for a page of the children of one event.
type RelationsQuery struct {
	RoomNID int64
	Parent  string // the parent's event ID
	// RelType and EventType, when not "", keep only children of that
	// rel_type and type, at every level of recursion.
	RelType, EventType string
	// Depth is how many levels of relationships to follow: 1 for direct
	// children only.
	Depth int
	// Visible is where the reader may see events; NotSenders are left out
	// (ignored users).
	Visible    []PosRange
	NotSenders []string
	// From and To bound the page as for SyncRoomPage: backwards, children
	// with To < stream_pos <= From, newest first; forwards, From <
	// stream_pos <= To, oldest first.
	From, To  int64
	Backwards bool
	Limit     int
}

// RelationsPage returns a page of the children of q.Parent: events whose
// m.relates_to names it, and with q.Depth > 1 their children too, in
// stream order.
func (db *DB) RelationsPage(ctx context.Context, q RelationsQuery) ([]*EventRecord, error) {
	query, args := relationsPageQuery(q)
	return queryEventsText(ctx, db.read, query, args...)
}

// relationsPageQuery returns RelationsPage's statement and its arguments.
func relationsPageQuery(q RelationsQuery) (string, []any) {
	args := []any{q.Parent, q.RoomNID}
	filter := func(prefix string) string {
		var f string
		if q.RelType != "" {
			args = append(args, q.RelType)
			f += " AND " + prefix + "rel_type = $" + strconv.Itoa(len(args))
		}
		if q.EventType != "" {
			args = append(args, q.EventType)
			f += " AND " + prefix + "event_type = $" + strconv.Itoa(len(args))
		}
		return f
	}
	page := func(col string) (cond, order string) {
		args = append(args, q.From, q.To)
		from, to := len(args)-1, len(args)
		if q.Backwards {
			return fmt.Sprintf("%s <= $%d AND %s > $%d", col, from, col, to), "DESC"
		}
		return fmt.Sprintf("%s > $%d AND %s <= $%d", col, from, col, to), "ASC"
	}
	if q.Depth <= 1 {
		// Direct children: walked in stream order in
		// event_relations_parent from the page's start, so that the
		// limit ends the walk. (Collecting them first, as below, read
		// every child of the parent for each page: a thread of thousands
		// of replies paid for all of them on every page.)
		direct := filter("x.")
		cond, order := page("x.stream_pos")
		vis := posCondition("x.stream_pos", q.Visible, &args)
		notSenders := notInCondition("x.sender", q.NotSenders, &args)
		return `SELECT ` + eventColumns + eventFrom + `JOIN event_relations x ON x.event_nid = e.event_nid
			WHERE x.relates_to = $1 AND x.room_nid = $2` + direct + ` AND ` + cond + ` AND ` + vis + notSenders + `
			ORDER BY x.stream_pos ` + order + limitClause(q.Limit), args
	}
	args = append(args, q.Depth)
	depth := len(args)
	direct, deeper := filter(""), filter("r.")
	cond, order := page("e.stream_pos")
	vis := posCondition("e.stream_pos", q.Visible, &args)
	notSenders := notInCondition("e.sender", q.NotSenders, &args)
	// Each event has one parent, so the children form a tree and the walk
	// meets every event once; the depth bound ends it even on a cycle
	// (possible in room versions whose event IDs are not hashes).
	return `
		WITH RECURSIVE related (event_nid, event_id, depth) AS (
			SELECT event_nid, event_id, 1 FROM event_relations
			WHERE relates_to = $1 AND room_nid = $2` + direct + `
			UNION ALL
			SELECT r.event_nid, r.event_id, related.depth + 1 FROM event_relations r
			JOIN related ON r.relates_to = related.event_id
			WHERE related.depth < $` + strconv.Itoa(depth) + ` AND r.room_nid = $2` + deeper + `
		)
		SELECT ` + eventColumns + eventFrom + `
		WHERE e.event_nid IN (SELECT event_nid FROM related) AND ` + cond + ` AND ` + vis + notSenders + `
		ORDER BY e.stream_pos ` + order + limitClause(q.Limit), args
}

// queryEventsText runs a whole query whose select list is eventColumns
// from eventFrom.
func queryEventsText(ctx context.Context, q queryer, query string, args ...any) ([]*EventRecord, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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

// EventsByPos returns the timeline events at the given stream positions,
// in no particular order.
func (db *DB) EventsByPos(ctx context.Context, positions []int64) ([]*EventRecord, error) {
	return eventsIn(ctx, db.read, "e.stream_pos", positions)
}

// Annotation is an m.annotation: who reacted to which event of which room,
// with which event type and key.
type Annotation struct {
	RoomID, RelatesTo, Sender, EventType, Key string
}

// SameAnnotation returns the ID of an annotation of a's sender like a (same
// parent, event type and key) that is not redacted (a redaction deletes
// the row), "" when there is none.
func (db *DB) SameAnnotation(ctx context.Context, a Annotation) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, `
		SELECT r.event_id FROM event_relations r JOIN rooms ON rooms.room_nid = r.room_nid
		WHERE r.relates_to = $1 AND r.rel_type = 'm.annotation' AND rooms.room_id = $2
			AND r.sender = $3 AND r.event_type = $4 AND r.aggregation_key = $5
		LIMIT 1`, a.RelatesTo, a.RoomID, a.Sender, a.EventType, a.Key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("annotations of %s: %w", a.RelatesTo, err)
	}
	return id, nil
}
