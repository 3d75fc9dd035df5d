package roomserver

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/roomserver/stateres"
	"github.com/myelin-chat/myelin/storage"
)

// writer is the state of one batch transaction: the transaction and what
// it has learnt about the rooms it writes.
type writer struct {
	rs    *Roomserver
	tx    *storage.Tx
	rooms map[string]*roomCtx
	// The rooms the current job touched, and for those the batch knew
	// before the job, a copy as they were: a job that fails is undone in
	// memory as its savepoint undoes it in the database.
	jobRooms map[string]bool
	saved    map[string]*roomCtx
}

// roomCtx is a room as the batch sees it, kept up to date as events are
// persisted (cheaper than reading it back for each event).
type roomCtx struct {
	room *storage.Room // StateNID is the current state's snapshot
	ver  *pdu.RoomVersion
	// extremities are the forward extremities now; stored, those in the
	// database, which flush brings up to date once per batch rather than
	// once per event.
	extremities []storage.Extremity
	stored      []storage.Extremity
}

func (rc *roomCtx) clone() *roomCtx {
	room := *rc.room
	return &roomCtx{room: &room, ver: rc.ver,
		extremities: append([]storage.Extremity(nil), rc.extremities...),
		stored:      append([]storage.Extremity(nil), rc.stored...)}
}

func newWriter(rs *Roomserver, tx *storage.Tx) *writer {
	return &writer{rs: rs, tx: tx, rooms: make(map[string]*roomCtx),
		jobRooms: make(map[string]bool), saved: make(map[string]*roomCtx)}
}

// startJob marks the beginning of a job.
func (w *writer) startJob() {
	clear(w.jobRooms)
	clear(w.saved)
}

// touch records that the current job uses the room rc, which the batch
// knew before the job when known is true.
func (w *writer) touch(roomID string, rc *roomCtx, known bool) {
	if w.jobRooms[roomID] {
		return
	}
	w.jobRooms[roomID] = true
	if known {
		w.saved[roomID] = rc.clone()
	}
}

// undoJob forgets what the failed job did to the rooms it touched (its
// database writes are rolled back to its savepoint), and drops their
// cached state, which may describe undone snapshots.
func (w *writer) undoJob() {
	for id := range w.jobRooms {
		if rc := w.rooms[id]; rc != nil {
			w.rs.cache.drop(rc.room.NID)
		}
		if s := w.saved[id]; s != nil {
			w.rooms[id] = s
		} else {
			delete(w.rooms, id)
		}
	}
}

// flush writes what the batch deferred: the forward extremities.
func (w *writer) flush(ctx context.Context) error {
	for _, rc := range w.rooms {
		var remove, add []int64
		for _, x := range rc.stored {
			if !hasExtremity(rc.extremities, x.EventNID) {
				remove = append(remove, x.EventNID)
			}
		}
		for _, x := range rc.extremities {
			if !hasExtremity(rc.stored, x.EventNID) {
				add = append(add, x.EventNID)
			}
		}
		if len(remove)+len(add) == 0 {
			continue
		}
		if err := w.tx.UpdateForwardExtremities(ctx, rc.room.NID, remove, add...); err != nil {
			return err
		}
		rc.stored = append(rc.stored[:0], rc.extremities...)
	}
	return nil
}

func hasExtremity(xs []storage.Extremity, nid int64) bool {
	for _, x := range xs {
		if x.EventNID == nid {
			return true
		}
	}
	return false
}

// room returns the room, or an error wrapping ErrRoomNotFound.
func (w *writer) room(ctx context.Context, roomID string) (*roomCtx, error) {
	if rc := w.rooms[roomID]; rc != nil {
		w.touch(roomID, rc, true)
		return rc, nil
	}
	room, err := w.tx.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	ver, err := pdu.GetRoomVersion(room.Version)
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", roomID, err)
	}
	ext, err := w.tx.ForwardExtremities(ctx, room.NID)
	if err != nil {
		return nil, err
	}
	rc := &roomCtx{room: room, ver: ver, extremities: ext, stored: append([]storage.Extremity(nil), ext...)}
	w.rooms[roomID] = rc
	w.touch(roomID, rc, false)
	return rc, nil
}

// stateEvents is part of a room state, parsed: what auth.Check looks at.
type stateEvents map[pdu.StateKey]*pdu.Event

func (s stateEvents) lookup(k pdu.StateKey) *pdu.Event { return s[k] }

func toStorageKeys(keys []pdu.StateKey) []storage.StateKey {
	out := make([]storage.StateKey, len(keys))
	for i, k := range keys {
		out[i] = storage.StateKey(k)
	}
	return out
}

// currentState returns the room's current state events at keys, from the
// state cache when it has them.
func (w *writer) currentState(ctx context.Context, rc *roomCtx, keys []pdu.StateKey) (stateEvents, error) {
	c := w.rs.cache.get(rc.room.NID, rc.room.StateNID)
	var missing []pdu.StateKey
	for _, k := range keys {
		if _, ok := c.events[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		recs, err := w.tx.CurrentStateEvents(ctx, rc.room.NID, toStorageKeys(missing))
		if err != nil {
			return nil, err
		}
		found, err := parseState(recs)
		if err != nil {
			return nil, err
		}
		for _, k := range missing {
			c.events[k] = found[k] // nil: known to be absent
		}
	}
	out := make(stateEvents, len(keys))
	for _, k := range keys {
		if ev := c.events[k]; ev != nil {
			out[k] = ev
		}
	}
	return out, nil
}

// snapshotState returns the events of snapshot snapNID at keys.
func (w *writer) snapshotState(ctx context.Context, snapNID int64, keys []pdu.StateKey) (stateEvents, error) {
	nids, err := w.tx.StateKeyNIDs(ctx, toStorageKeys(keys), false)
	if err != nil {
		return nil, err
	}
	skNIDs := make([]int64, 0, len(nids))
	for _, n := range nids {
		skNIDs = append(skNIDs, n)
	}
	entries, err := w.tx.SnapshotLookup(ctx, snapNID, skNIDs)
	if err != nil {
		return nil, err
	}
	evNIDs := make([]int64, 0, len(entries))
	for _, e := range entries {
		evNIDs = append(evNIDs, e)
	}
	recs, err := w.tx.EventsByNID(ctx, evNIDs)
	if err != nil {
		return nil, err
	}
	return parseState(recs)
}

func parseState(recs []*storage.EventRecord) (stateEvents, error) {
	out := make(stateEvents, len(recs))
	for _, rec := range recs {
		ev, err := parseRecord(rec)
		if err != nil {
			return nil, err
		}
		out[ev.StateTuple()] = ev
	}
	return out, nil
}

// parseRecord parses a stored event (already checked when it was stored).
func parseRecord(rec *storage.EventRecord) (*pdu.Event, error) {
	ver, err := pdu.GetRoomVersion(rec.RoomVersion)
	if err != nil {
		return nil, fmt.Errorf("stored event %s: %w", rec.EventID, err)
	}
	ev, err := pdu.ParseEvent(rec.JSON, ver)
	if err != nil {
		return nil, fmt.Errorf("stored event %s: %w", rec.EventID, err)
	}
	if ev.EventID() != rec.EventID {
		// A redacted v3+ event keeps its ID: the reference hash is of the
		// redacted form anyway.
		return nil, fmt.Errorf("stored event %s parses with ID %s", rec.EventID, ev.EventID())
	}
	return ev, nil
}

// persistOpts says how an event enters the room.
type persistOpts struct {
	// stateBefore is the snapshot of the state before the event.
	stateBefore int64
	// rejected or softFailed events are stored outside the timeline.
	rejected, softFailed bool
	txn                  *TxnKey
}

// persist stores ev and, when it is accepted, moves the room forward:
// state snapshot, forward extremities, current state, stream position,
// redaction, transaction ID. It returns nil for a rejected or soft-failed
// event.
func (w *writer) persist(ctx context.Context, rc *roomCtx, ev *pdu.Event, o persistOpts) (*Output, error) {
	tx := w.tx
	rec := &storage.EventRecord{
		EventID:        ev.EventID(),
		RoomNID:        rc.room.NID,
		Type:           ev.Type(),
		Sender:         ev.Sender(),
		Depth:          ev.Depth(),
		OriginServerTS: ev.OriginServerTS(),
		StateBeforeNID: o.stateBefore,
		StateAfterNID:  o.stateBefore,
		Membership:     ev.Membership(),
		Redacts:        ev.Redacts(),
		Rejected:       o.rejected,
		SoftFailed:     o.softFailed,
		JSON:           ev.JSON(),
	}
	key := ev.StateTuple()
	if ev.IsState() {
		nids, err := tx.StateKeyNIDs(ctx, []storage.StateKey{storage.StateKey(key)}, true)
		if err != nil {
			return nil, err
		}
		rec.StateKeyNID = nids[storage.StateKey(key)]
	}
	accepted := !o.rejected && !o.softFailed
	if !accepted {
		_, err := tx.InsertEvent(ctx, rec)
		return nil, err
	}
	pos, err := tx.NextStreamPos(ctx)
	if err != nil {
		return nil, err
	}
	rec.StreamPos = pos
	nid, err := tx.InsertEvent(ctx, rec)
	if err != nil {
		return nil, err
	}
	after := o.stateBefore
	if ev.IsState() {
		if after, err = tx.NewSnapshot(ctx, rc.room.NID, o.stateBefore, storage.StateMap{rec.StateKeyNID: nid}); err != nil {
			return nil, err
		}
		if err := tx.SetEventStateAfter(ctx, nid, after); err != nil {
			return nil, err
		}
	}

	// Forward extremities: the prev events stop being extremities, the
	// event becomes one.
	// event becomes one (written to the database by flush).
	remaining := rc.extremities[:0:0]
	for _, x := range rc.extremities {
		if !contains(ev.PrevEventIDs(), x.EventID) {
			remaining = append(remaining, x)
		}
	}
	extendsCurrent := len(remaining) == 0 && o.stateBefore == rc.room.StateNID
	rc.extremities = append(remaining, storage.Extremity{EventNID: nid, EventID: ev.EventID(), Depth: ev.Depth()})

	// Current state.
	switch {
	case extendsCurrent && ev.IsState():
		// The usual case: the event extends the whole room, so the state
		// after it is the new current state, one key changed.
		if err := w.applyCurrentChanges(ctx, rc, storage.StateMap{rec.StateKeyNID: nid}, map[int64]*pdu.Event{nid: ev}); err != nil {
			return nil, err
		}
		if err := tx.SetRoomState(ctx, rc.room.NID, after); err != nil {
			return nil, err
		}
		w.rs.cache.advance(rc.room.NID, rc.room.StateNID, after, key, ev)
		rc.room.StateNID = after
	case extendsCurrent:
		// A message event changes no state.
	default:
		if err := w.resolveCurrent(ctx, rc); err != nil {
			return nil, err
		}
	}

	if err := w.recordRelation(ctx, rc.room.NID, ev, nid, pos); err != nil {
		return nil, err
	}
	if ev.Type() == "m.room.redaction" && ev.Redacts() != "" {
		if err := w.applyRedaction(ctx, rc, ev); err != nil {
			return nil, err
		}
	}
	if o.txn != nil {
		if err := tx.InsertTxn(ctx, rc.room.NID, o.txn.UserID, o.txn.DeviceID, o.txn.Endpoint, o.txn.TxnID, nid); err != nil {
			return nil, err
		}
	}
	rec.RoomID, rec.NID, rec.StateKey, rec.StateAfterNID = ev.RoomID(), nid, ev.StateKey(), after
	return &Output{Event: ev, StreamPos: pos, record: rec}, nil
}

// applyCurrentChanges writes changes (state key NID → event NID, 0 for
// removed) into room_state and room_memberships. events holds the parsed
// events of the changes' non-zero values; for removed member keys the user
// is looked up.
func (w *writer) applyCurrentChanges(ctx context.Context, rc *roomCtx, changes storage.StateMap, events map[int64]*pdu.Event) error {
	var removedKeys []int64
	for sk, evNID := range changes {
		if err := w.tx.SetCurrentState(ctx, rc.room.NID, sk, evNID); err != nil {
			return err
		}
		if evNID == 0 {
			removedKeys = append(removedKeys, sk)
			continue
		}
		ev := events[evNID]
		if ev == nil {
			return fmt.Errorf("current state: event %d not loaded", evNID)
		}
		if ev.Type() == "m.room.member" && ev.StateKey() != nil {
			if err := w.tx.SetMembership(ctx, rc.room.NID, *ev.StateKey(), ev.Membership(), evNID); err != nil {
				return err
			}
		}
	}
	if len(removedKeys) > 0 {
		keys, err := w.tx.StateKeysByNID(ctx, removedKeys)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Type == "m.room.member" {
				if err := w.tx.SetMembership(ctx, rc.room.NID, k.StateKey, "", 0); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// resolveCurrent recomputes the room's current state as the resolution of
// the states after its forward extremities (a fork in the DAG), and
// stores it: a new snapshot, room_state and room_memberships.
func (w *writer) resolveCurrent(ctx context.Context, rc *roomCtx) error {
	nids := make([]int64, len(rc.extremities))
	for i, x := range rc.extremities {
		nids[i] = x.EventNID
	}
	recs, err := w.tx.EventsByNID(ctx, nids)
	if err != nil {
		return err
	}
	snaps := make([]int64, 0, len(recs))
	for _, r := range recs {
		snaps = append(snaps, r.StateAfterNID)
	}
	resolved, err := w.resolveSnapshots(ctx, rc, snaps)
	if err != nil {
		return err
	}
	// When every extremity has the same state (a single one, such as a
	// join imported from send_join), that snapshot is the current state
	// already: pointing the room at it saves writing a copy of it, which
	// for a newly joined room is the whole state.
	var same int64
	for i, s := range snaps {
		if i == 0 {
			same = s
		} else if s != same {
			same = 0
		}
	}
	return w.setCurrentState(ctx, rc, resolved, same)
}

// setCurrentState makes state (by NIDs) the room's current state. snap,
// when not 0, is a stored snapshot holding exactly state, which the room
// then points at; otherwise a new snapshot is written.
func (w *writer) setCurrentState(ctx context.Context, rc *roomCtx, state storage.StateMap, snap int64) error {
	old, err := w.tx.Snapshot(ctx, rc.room.StateNID)
	if err != nil {
		return err
	}
	changes := diffState(old, state)
	if len(changes) == 0 {
		return nil
	}
	var evNIDs []int64
	for _, e := range changes {
		if e != 0 {
			evNIDs = append(evNIDs, e)
		}
	}
	recs, err := w.tx.EventsByNID(ctx, evNIDs)
	if err != nil {
		return err
	}
	events := make(map[int64]*pdu.Event, len(recs))
	for _, r := range recs {
		ev, err := parseRecord(r)
		if err != nil {
			return err
		}
		events[r.NID] = ev
	}
	if err := w.applyCurrentChanges(ctx, rc, changes, events); err != nil {
		return err
	}
	if snap == 0 {
		if snap, err = w.tx.NewSnapshot(ctx, rc.room.NID, rc.room.StateNID, changes); err != nil {
			return err
		}
	}
	if err := w.tx.SetRoomState(ctx, rc.room.NID, snap); err != nil {
		return err
	}
	w.rs.cache.drop(rc.room.NID)
	rc.room.StateNID = snap
	return nil
}

// diffState returns what turns old into next: changed and added keys, and
// removed keys mapped to 0.
func diffState(old, next storage.StateMap) storage.StateMap {
	changes := storage.StateMap{}
	for k, v := range next {
		if old[k] != v {
			changes[k] = v
		}
	}
	for k := range old {
		if _, ok := next[k]; !ok {
			changes[k] = 0
		}
	}
	return changes
}

// resolveSnapshots returns the resolution of the states of the snapshots
// (stateres.Resolve with the room's algorithm), by NIDs. One distinct
// snapshot needs no resolution.
func (w *writer) resolveSnapshots(ctx context.Context, rc *roomCtx, snaps []int64) (storage.StateMap, error) {
	sort.Slice(snaps, func(a, b int) bool { return snaps[a] < snaps[b] })
	distinct := snaps[:0:0]
	for i, s := range snaps {
		if i == 0 || s != snaps[i-1] {
			distinct = append(distinct, s)
		}
	}
	if len(distinct) == 1 {
		return w.tx.Snapshot(ctx, distinct[0])
	}
	src := &eventSource{ctx: ctx, tx: w.tx, events: map[string]*pdu.Event{}, rejected: map[string]bool{}, nids: map[string]int64{}}
	sets := make([]stateres.StateMap, 0, len(distinct))
	for _, s := range distinct {
		state, err := w.tx.Snapshot(ctx, s)
		if err != nil {
			return nil, err
		}
		set, err := src.stateMap(state)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	resolved, err := stateres.Resolve(rc.ver, sets, src)
	if err != nil {
		return nil, fmt.Errorf("room %s: state resolution: %w", rc.room.RoomID, err)
	}
	return src.nidState(resolved)
}

// eventSource serves state resolution from the database (the batch's
// transaction), remembering what it loaded.
type eventSource struct {
	ctx      context.Context
	tx       *storage.Tx
	events   map[string]*pdu.Event
	rejected map[string]bool
	nids     map[string]int64
	keys     map[int64]storage.StateKey
}

func (s *eventSource) add(recs []*storage.EventRecord) error {
	for _, r := range recs {
		ev, err := parseRecord(r)
		if err != nil {
			return err
		}
		s.events[r.EventID] = ev
		s.nids[r.EventID] = r.NID
		if r.Rejected {
			s.rejected[r.EventID] = true
		}
	}
	return nil
}

// Event implements stateres.EventSource.
func (s *eventSource) Event(id string) (*pdu.Event, error) {
	if ev := s.events[id]; ev != nil {
		return ev, nil
	}
	recs, err := s.tx.EventsByID(s.ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, &stateres.MissingEventError{ID: id}
	}
	if err := s.add(recs); err != nil {
		return nil, err
	}
	return s.events[id], nil
}

// Rejected implements stateres.RejectionSource.
func (s *eventSource) Rejected(id string) bool { return s.rejected[id] }

// stateMap turns a state by NIDs into one by IDs, loading its events.
func (s *eventSource) stateMap(state storage.StateMap) (stateres.StateMap, error) {
	skNIDs := make([]int64, 0, len(state))
	evNIDs := make([]int64, 0, len(state))
	for k, e := range state {
		skNIDs = append(skNIDs, k)
		evNIDs = append(evNIDs, e)
	}
	keys, err := s.tx.StateKeysByNID(s.ctx, skNIDs)
	if err != nil {
		return nil, err
	}
	if s.keys == nil {
		s.keys = map[int64]storage.StateKey{}
	}
	for n, k := range keys {
		s.keys[n] = k
	}
	recs, err := s.tx.EventsByNID(s.ctx, evNIDs)
	if err != nil {
		return nil, err
	}
	if err := s.add(recs); err != nil {
		return nil, err
	}
	idOf := make(map[int64]string, len(recs))
	for _, r := range recs {
		idOf[r.NID] = r.EventID
	}
	out := make(stateres.StateMap, len(state))
	for k, e := range state {
		key, ok := keys[k]
		if !ok || idOf[e] == "" {
			return nil, fmt.Errorf("snapshot entry (%d, %d) names an unknown key or event", k, e)
		}
		out[pdu.StateKey(key)] = idOf[e]
	}
	return out, nil
}

// nidState turns a resolved state by IDs back into NIDs.
func (s *eventSource) nidState(state stateres.StateMap) (storage.StateMap, error) {
	keys := make([]storage.StateKey, 0, len(state))
	for k, id := range state {
		keys = append(keys, storage.StateKey(k))
		if _, ok := s.nids[id]; !ok {
			if _, err := s.Event(id); err != nil {
				return nil, err
			}
		}
	}
	skNIDs, err := s.tx.StateKeyNIDs(s.ctx, keys, true)
	if err != nil {
		return nil, err
	}
	out := make(storage.StateMap, len(state))
	for k, id := range state {
		out[skNIDs[storage.StateKey(k)]] = s.nids[id]
	}
	return out, nil
}

// applyRedaction applies an accepted redaction to its target, when the
// target is known, in the same room, not yet redacted, and the redaction
// is allowed (auth.RedactionAllowed, checked by the caller for local
// events). The target's stored JSON becomes its redacted form with
// unsigned.redacted_because.
func (w *writer) applyRedaction(ctx context.Context, rc *roomCtx, redaction *pdu.Event) error {
	recs, err := w.tx.EventsByID(ctx, []string{redaction.Redacts()})
	if err != nil || len(recs) == 0 {
		return err
	}
	target := recs[0]
	if target.RoomNID != rc.room.NID || target.RedactedBy != "" {
		return nil
	}
	original, err := parseRecord(target)
	if err != nil {
		return err
	}
	allowed, err := w.redactionAllowed(ctx, rc, redaction, original)
	if err != nil || !allowed {
		return err
	}
	red, err := redactedJSON(original, redaction)
	if err != nil {
		return err
	}
	// The target may be in the current state, whose cached form would
	// keep the unredacted content.
	w.rs.cache.drop(rc.room.NID)
	if err := w.tx.ApplyRedaction(ctx, target.NID, red, redaction.EventID()); err != nil {
		return err
	}
	// A redacted event's relationship is broken.
	return w.tx.DeleteRelation(ctx, target.NID)
}

// recordRelation records the relationship an event that entered the
// timeline at position pos declares (m.relates_to), in the transaction
// that stores it: whoever reads the event (a /sync, a client fetching a
// thread's root) finds it counted in the aggregations.
func (w *writer) recordRelation(ctx context.Context, roomNID int64, ev *pdu.Event, nid, pos int64) error {
	rel, ok := pdu.ParseRelatesTo(ev.Type(), ev.Content())
	if !ok {
		return nil
	}
	return w.tx.InsertRelation(ctx, storage.Relation{
		EventNID: nid, EventID: ev.EventID(), RoomNID: roomNID, RelatesTo: rel.EventID, RelType: rel.RelType,
		EventType: ev.Type(), Sender: ev.Sender(), StreamPos: pos, OriginServerTS: ev.OriginServerTS(), AggregationKey: rel.Key,
	})
}

// redactedJSON is the stored form of a redacted event: the redaction
// algorithm's output plus unsigned.redacted_because.
func redactedJSON(original, redaction *pdu.Event) ([]byte, error) {
	red, err := pdu.Redact(original.JSON(), original.Version())
	if err != nil {
		return nil, err
	}
	if len(red) < 2 || red[len(red)-1] != '}' {
		return nil, errors.New("redacted event is not an object")
	}
	out := make([]byte, 0, len(red)+len(redaction.JSON())+40)
	out = append(out, red[:len(red)-1]...)
	out = append(out, `,"unsigned":{"redacted_because":`...)
	out = append(out, redaction.JSON()...)
	out = append(out, "}}"...)
	return out, nil
}

// unsignedOf returns the "unsigned" object of stored JSON, or nil.
func unsignedOf(js []byte) []byte {
	u := gjson.GetBytes(js, "unsigned")
	if !u.Exists() {
		return nil
	}
	return []byte(u.Raw)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
