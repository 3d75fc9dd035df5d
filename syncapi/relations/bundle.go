package relations

// Bundled aggregations for a page of events (client-server-api
// "Aggregations of child events"): m.replace (event_replacements.md),
// m.thread (threading.md) and m.reference (reference_relations.md);
// m.annotation is not aggregated by the server.
//
// A page costs a constant number of queries: which of its events have
// children at all (one statement; most have none, and the page stops
// there), thread summaries (one grouped statement), edits and references
// (one statement), the latest thread replies and chosen edits (two), then
// the same again once for the latest thread replies, whose own
// aggregations are bundled with them.

import (
	"context"
	"slices"

	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/storage"
)

// Request asks for the bundled aggregations of a page of events.
type Request struct {
	// UserID is the reader (current_user_participated).
	UserID string
	// Ignored are the reader's ignored users, whose children count for
	// nothing.
	Ignored map[string]bool
	// Rooms holds the page's events by room, with what the reader may see
	// of each room.
	Rooms []Scope
}

// Scope is the events of a page in one room, and the stream positions of
// the room the reader may see (Ranges; storage.AllPositions for all).
type Scope struct {
	RoomNID int64
	Events  []*storage.EventRecord
	Visible []storage.PosRange
}

// Load returns the bundled aggregations of the request's events that have
// any, by event NID, for clientevent.Options.Relations.
func Load(ctx context.Context, db *storage.DB, req Request) (map[int64]*clientevent.Relations, error) {
	out := map[int64]*clientevent.Relations{}
	if err := load(ctx, db, req, out, map[int64]bool{}, true); err != nil {
		return nil, err
	}
	return out, nil
}

// load adds the aggregations of req's events to out, skipping the events
// in done (already aggregated) and adding the others to it.
func load(ctx context.Context, db *storage.DB, req Request, out map[int64]*clientevent.Relations, done map[int64]bool, withLatest bool) error {
	parents := map[string]*storage.EventRecord{}
	var ids []string
	for _, s := range req.Rooms {
		for _, ev := range s.Events {
			// State events get no aggregations (the spec's warning), and
			// events outside the timeline have no children we serve.
			if ev.StateKey != nil || ev.StreamPos == 0 || done[ev.NID] {
				continue
			}
			done[ev.NID] = true
			parents[ev.EventID] = ev
			ids = append(ids, ev.EventID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// Most events have no children: a first look in the parents' index
	// alone leaves the aggregation statements, with their visibility
	// ranges, only the parents that have some (BenchmarkInitialSync, 100
	// rooms of 20 messages without relations: 42–51 ms before, 33–34).
	having, err := db.ParentsWithChildren(ctx, ids)
	if err != nil || len(having) == 0 {
		return err
	}
	var scopes []storage.AggregationScope
	for _, s := range req.Rooms {
		sc := storage.AggregationScope{RoomNID: s.RoomNID, Visible: s.Visible}
		for _, ev := range s.Events {
			if having[ev.EventID] && parents[ev.EventID] == ev {
				sc.Parents = append(sc.Parents, ev.EventID)
			}
		}
		if len(sc.Parents) > 0 {
			scopes = append(scopes, sc)
		}
	}
	ignored := make([]string, 0, len(req.Ignored))
	for u := range req.Ignored {
		ignored = append(ignored, u)
	}
	slices.Sort(ignored)

	threads, err := db.ThreadAggregates(ctx, scopes, req.UserID, ignored)
	if err != nil {
		return err
	}
	children, err := db.ChildRelations(ctx, scopes, []string{RelReplace, RelReference}, ignored)
	if err != nil {
		return err
	}
	get := func(parent *storage.EventRecord) *clientevent.Relations {
		r := out[parent.NID]
		if r == nil {
			r = &clientevent.Relations{}
			out[parent.NID] = r
		}
		return r
	}

	// The most recent valid replacement of each parent.
	edits := map[string]storage.Relation{}
	for _, c := range children {
		parent := parents[c.RelatesTo]
		if parent == nil || parent.RoomNID != c.RoomNID {
			continue
		}
		switch c.RelType {
		case RelReference:
			r := get(parent)
			r.References = append(r.References, c.EventID)
		case RelReplace:
			if !validReplacement(parent, c) {
				continue
			}
			if best, ok := edits[c.RelatesTo]; !ok || newerEdit(c, best) {
				edits[c.RelatesTo] = c
			}
		}
	}

	var editNIDs, latestPos []int64
	for _, c := range edits {
		editNIDs = append(editNIDs, c.EventNID)
	}
	for _, t := range threads {
		latestPos = append(latestPos, t.LatestPos)
	}
	editEvents, err := db.EventsByNID(ctx, editNIDs)
	if err != nil {
		return err
	}
	byNID := map[int64]*storage.EventRecord{}
	for _, ev := range editEvents {
		byNID[ev.NID] = ev
	}
	for parentID, c := range edits {
		if ev := byNID[c.EventNID]; ev != nil && ev.RedactedBy == "" {
			get(parents[parentID]).Replace = ev
		}
	}

	if len(threads) == 0 {
		return nil
	}
	latest, err := db.EventsByPos(ctx, latestPos)
	if err != nil {
		return err
	}
	byPos := map[int64]*storage.EventRecord{}
	for _, ev := range latest {
		byPos[ev.StreamPos] = ev
	}
	nested := map[int64]*Scope{}
	for parentID, t := range threads {
		parent, ev := parents[parentID], byPos[t.LatestPos]
		if parent == nil || ev == nil || ev.RoomNID != parent.RoomNID {
			continue
		}
		get(parent).Thread = &clientevent.Thread{
			Latest:                  ev,
			Count:                   t.Count,
			CurrentUserParticipated: t.Participated || parent.Sender == req.UserID,
		}
		if withLatest {
			if nested[ev.RoomNID] == nil {
				nested[ev.RoomNID] = &Scope{RoomNID: ev.RoomNID, Visible: visibleOf(req, ev.RoomNID)}
			}
			nested[ev.RoomNID].Events = append(nested[ev.RoomNID].Events, ev)
		}
	}
	if len(nested) == 0 {
		return nil
	}
	// The latest replies carry their own aggregations (an edit of the
	// latest reply is common).
	sub := Request{UserID: req.UserID, Ignored: req.Ignored}
	for _, s := range nested {
		sub.Rooms = append(sub.Rooms, *s)
	}
	return load(ctx, db, sub, out, done, false)
}

func visibleOf(req Request, roomNID int64) []storage.PosRange {
	for _, s := range req.Rooms {
		if s.RoomNID == roomNID {
			return s.Visible
		}
	}
	return nil
}

// validReplacement applies the rules of event_replacements.md ("Validity
// of replacement events") that need the original: same sender and type,
// not a state event, not itself a replacement. (m.new_content is checked
// when the relation is recorded.) An original that was redacted has no
// replacement bundled.
func validReplacement(original *storage.EventRecord, edit storage.Relation) bool {
	if original.StateKey != nil || original.RedactedBy != "" ||
		edit.Sender != original.Sender || edit.EventType != original.Type {
		return false
	}
	if r, ok := Parse(original.JSON); ok && r.RelType == RelReplace {
		return false
	}
	return true
}

// newerEdit orders replacements as the spec does: by origin_server_ts,
// then by event ID.
func newerEdit(a, b storage.Relation) bool {
	if a.OriginServerTS != b.OriginServerTS {
		return a.OriginServerTS > b.OriginServerTS
	}
	return a.EventID > b.EventID
}
