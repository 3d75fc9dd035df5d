package storage

// The reads behind bundled aggregations (client-server-api "Aggregations
// of child events") and the threads list. Aggregations are read for a whole
// page of parents at once: one statement per kind of aggregation, whatever
// the page's size.

import (
	"context"
	"fmt"
	"strings"
)

// AggregationScope is a set of parents of one room and where in that
// room's history the reader may see their children.
type AggregationScope struct {
	RoomNID int64
	Parents []string // event IDs
	Visible []PosRange
}

// ThreadAggregate summarises the thread replies (m.thread children) of a
// root that the reader may see.
type ThreadAggregate struct {
	Count int
	// LatestPos is the stream position of the newest reply.
	LatestPos int64
	// Participated: userID sent one of the replies.
	Participated bool
}

// scopeConditions returns the scopes as one SQL condition over
// event_relations' room_nid, relates_to and stream_pos, adding parameters
// to args.
func scopeConditions(scopes []AggregationScope, args *[]any) string {
	var sb strings.Builder
	sb.WriteByte('(')
	n := 0
	for _, s := range scopes {
		if len(s.Parents) == 0 {
			continue
		}
		if n > 0 {
			sb.WriteString(" OR ")
		}
		n++
		*args = append(*args, s.RoomNID)
		fmt.Fprintf(&sb, "(room_nid = $%d AND relates_to IN (", len(*args))
		sb.WriteString(inList(len(*args)+1, len(s.Parents)))
		for _, p := range s.Parents {
			*args = append(*args, p)
		}
		sb.WriteString(") AND ")
		sb.WriteString(posCondition("stream_pos", s.Visible, args))
		sb.WriteByte(')')
	}
	if n == 0 {
		return "(1 = 0)"
	}
	sb.WriteByte(')')
	return sb.String()
}

// scopeBatches splits scopes into batches of at most about inChunk
// parents, so that no statement has too many parameters.
func scopeBatches(scopes []AggregationScope) [][]AggregationScope {
	var out [][]AggregationScope
	var cur []AggregationScope
	n := 0
	for _, s := range scopes {
		for part := range chunks(s.Parents, inChunk) {
			if n+len(part) > inChunk && len(cur) > 0 {
				out = append(out, cur)
				cur, n = nil, 0
			}
			cur = append(cur, AggregationScope{RoomNID: s.RoomNID, Parents: part, Visible: s.Visible})
			n += len(part)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// ParentsWithChildren returns which of parents (event IDs) a relation
// names, in any room, seen or not: a first look, from the parents' index
// alone, before the aggregations' reads.
func (db *DB) ParentsWithChildren(ctx context.Context, parents []string) (map[string]bool, error) {
	out := map[string]bool{}
	for chunk := range chunks(parents, inChunk) {
		args := make([]any, len(chunk))
		for i, p := range chunk {
			args[i] = p
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT DISTINCT relates_to FROM event_relations WHERE relates_to IN (`+inList(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("parents with children: %w", err)
		}
		ids, err := scanStringRows(rows)
		if err != nil {
			return nil, fmt.Errorf("parents with children: %w", err)
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

// ThreadAggregates returns the thread summary of each parent among scopes
// that has replies the reader may see, by parent event ID. Replies from
// notSenders (ignored users) are left out of everything.
func (db *DB) ThreadAggregates(ctx context.Context, scopes []AggregationScope, userID string, notSenders []string) (map[string]ThreadAggregate, error) {
	out := map[string]ThreadAggregate{}
	for _, batch := range scopeBatches(scopes) {
		args := []any{userID}
		where := scopeConditions(batch, &args) + notInCondition("sender", notSenders, &args)
		rows, err := db.read.QueryContext(ctx, `
			SELECT relates_to, COUNT(*), MAX(stream_pos), MAX(CASE WHEN sender = $1 THEN 1 ELSE 0 END)
			FROM event_relations WHERE rel_type = 'm.thread' AND `+where+`
			GROUP BY relates_to`, args...)
		if err != nil {
			return nil, fmt.Errorf("thread aggregates: %w", err)
		}
		for rows.Next() {
			var (
				parent string
				a      ThreadAggregate
				mine   int
			)
			if err := rows.Scan(&parent, &a.Count, &a.LatestPos, &mine); err != nil {
				rows.Close()
				return nil, fmt.Errorf("thread aggregates: %w", err)
			}
			a.Participated = mine == 1
			out[parent] = a
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("thread aggregates: %w", err)
		}
	}
	return out, nil
}

// ChildRelations returns the relations of the given rel_types whose parent
// is among scopes and that the reader may see, in stream order, leaving out
// those from notSenders.
func (db *DB) ChildRelations(ctx context.Context, scopes []AggregationScope, relTypes, notSenders []string) ([]Relation, error) {
	var out []Relation
	for _, batch := range scopeBatches(scopes) {
		args := make([]any, 0, len(relTypes))
		for _, t := range relTypes {
			args = append(args, t)
		}
		where := `rel_type IN (` + inList(1, len(relTypes)) + `) AND ` + scopeConditions(batch, &args) +
			notInCondition("sender", notSenders, &args)
		rows, err := db.read.QueryContext(ctx, `
			SELECT event_nid, event_id, room_nid, relates_to, rel_type, event_type, sender, stream_pos,
				origin_server_ts, aggregation_key
			FROM event_relations WHERE `+where+` ORDER BY stream_pos`, args...)
		if err != nil {
			return nil, fmt.Errorf("child relations: %w", err)
		}
		for rows.Next() {
			var r Relation
			if err := rows.Scan(&r.EventNID, &r.EventID, &r.RoomNID, &r.RelatesTo, &r.RelType, &r.EventType,
				&r.Sender, &r.StreamPos, &r.OriginServerTS, &r.AggregationKey); err != nil {
				rows.Close()
				return nil, fmt.Errorf("child relations: %w", err)
			}
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("child relations: %w", err)
		}
	}
	return out, nil
}

// Thread is a thread of a room: its root and its latest activity.
type Thread struct {
	RootID    string
	LatestPos int64
}

// ThreadsQuery asks for a page of a room's threads.
type ThreadsQuery struct {
	RoomNID int64
	// From: only threads whose latest reply is at or before it.
	From  int64
	Limit int
	// Participant, when not "", keeps the threads whose root or one of
	// whose replies they sent.
	Participant string
}

// Threads returns a page of the room's threads, newest activity first.
func (db *DB) Threads(ctx context.Context, q ThreadsQuery) ([]Thread, error) {
	args := []any{q.RoomNID, q.From}
	where := ""
	if q.Participant != "" {
		args = append(args, q.Participant)
		where = ` AND (EXISTS (SELECT 1 FROM event_relations r WHERE r.relates_to = t.root_id
				AND r.rel_type = 'm.thread' AND r.room_nid = t.room_nid AND r.sender = $3)
			OR EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.root_id AND e.sender = $3))`
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT t.root_id, t.latest_pos FROM event_threads t
		WHERE t.room_nid = $1 AND t.latest_pos <= $2`+where+`
		ORDER BY t.latest_pos DESC`+limitClause(q.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	defer rows.Close()
	var out []Thread
	for rows.Next() {
		var t Thread
		if err := rows.Scan(&t.RootID, &t.LatestPos); err != nil {
			return nil, fmt.Errorf("threads: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	return out, nil
}
