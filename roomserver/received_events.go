package roomserver

import (
	"context"
	"slices"
	"strings"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// jobEvents is what one InputReceived job knows of the events its events
// are and cite (themselves, their auth and prev events), and of the
// redactions that arrived before their target: read from the database
// once for the whole job rather than once per event (a transaction's 50
// events), then kept up to date with what the job stores. Within the job nothing else writes the room, so an ID it holds
// no record of is not stored.
//
// A record of an event the job stored is made from the event, not read
// back: it lacks what only storing assigns (NID, stream position, state
// key NID), which the received path does not look at. When the database
// holds more than the event tells (an accepted state event's state after
// it, a redaction applied to it), the ID is marked to be read again.
type jobEvents struct {
	recs  map[string]*storage.EventRecord
	stale map[string]bool
	// redactions are the accepted redactions of the job's events, by
	// target, in stream order.
	redactions map[string][]*storage.EventRecord
}

// authIDsOf returns the IDs of ev's auth events, and in room versions
// where the room ID names the create event, the create event's.
func authIDsOf(ev *pdu.Event, roomID string) []string {
	ids := append([]string(nil), ev.AuthEventIDs()...)
	if ev.Version().CreateEventIsRoomID {
		ids = append(ids, "$"+strings.TrimPrefix(roomID, "!"))
	}
	return ids
}

// readJobEvents reads the records of events and of those they cite.
func readJobEvents(ctx context.Context, tx *storage.Tx, roomID string, events []*pdu.Event) (*jobEvents, error) {
	var ids, own []string
	for _, ev := range events {
		if ev != nil {
			own = append(own, ev.EventID())
			ids = append(append(append(ids, ev.EventID()), authIDsOf(ev, roomID)...), ev.PrevEventIDs()...)
		}
	}
	slices.Sort(ids)
	recs, err := tx.EventsByID(ctx, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	redactions, err := tx.RedactionsOfAny(ctx, own)
	if err != nil {
		return nil, err
	}
	j := &jobEvents{recs: make(map[string]*storage.EventRecord, len(recs)), stale: map[string]bool{}, redactions: redactions}
	for _, r := range recs {
		j.recs[r.EventID] = r
	}
	return j, nil
}

// records returns the stored events among ids by ID, reading again those
// marked stale.
func (j *jobEvents) records(ctx context.Context, tx *storage.Tx, ids []string) (map[string]*storage.EventRecord, error) {
	var reread []string
	for _, id := range ids {
		if j.stale[id] {
			reread = append(reread, id)
			delete(j.stale, id)
		}
	}
	if len(reread) > 0 {
		recs, err := tx.EventsByID(ctx, reread)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			j.recs[r.EventID] = r
		}
	}
	out := make(map[string]*storage.EventRecord, len(ids))
	for _, id := range ids {
		if r := j.recs[id]; r != nil {
			out[id] = r
		}
	}
	return out, nil
}

// stored records that the job stored ev in room rc as o says.
func (j *jobEvents) stored(rc *roomCtx, ev *pdu.Event, o persistOpts) {
	accepted := !o.rejected && !o.softFailed
	rec := &storage.EventRecord{
		EventID: ev.EventID(), RoomNID: rc.room.NID, RoomID: ev.RoomID(), RoomVersion: rc.ver.ID,
		Type: ev.Type(), StateKey: ev.StateKey(), Sender: ev.Sender(), Depth: ev.Depth(),
		OriginServerTS: ev.OriginServerTS(), StateBeforeNID: o.stateBefore, StateAfterNID: o.stateBefore,
		Membership: ev.Membership(), Redacts: ev.Redacts(), Rejected: o.rejected, SoftFailed: o.softFailed,
		JSON: ev.JSON(),
	}
	if accepted && ev.IsState() {
		// Persisting made the snapshot of the state after it.
		j.stale[ev.EventID()] = true
	} else {
		j.recs[ev.EventID()] = rec
	}
	if accepted && ev.Type() == "m.room.redaction" && ev.Redacts() != "" {
		// Applied to its target if stored; else the target, when it
		// comes (later in this job, maybe), finds it.
		j.stale[ev.Redacts()] = true
		j.redactions[ev.Redacts()] = append(j.redactions[ev.Redacts()], rec)
	}
}
