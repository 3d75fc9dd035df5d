package roomserver

// History received late: events older than any this server holds of a
// room, fetched from other servers with /backfill when a client pages
// past the start of what is here. They enter the room's timeline before
// its existing history, at stream positions below every other (as Synapse
// gives backfilled events negative ones), so /messages pages through them
// in order while /sync, which reads forward from positive positions, never
// sees them as new. They change neither the forward extremities nor the
// current state, and are not published.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// BackfillPoints returns the events to ask other servers to backfill from
// (the prev_events of the room's oldest timeline event that are not in its
// timeline), nil when the oldest event is the room's creation.
func (rs *Roomserver) BackfillPoints(ctx context.Context, roomID string) ([]string, error) {
	oldest, err := rs.db.OldestTimelineEvent(ctx, roomID)
	if err != nil || oldest == nil || oldest.Type == "m.room.create" {
		return nil, err
	}
	ev, err := parseRecord(oldest)
	if err != nil {
		return nil, err
	}
	prevs := ev.PrevEventIDs()
	known, err := rs.db.EventsByID(ctx, prevs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range prevs {
		if !slices.ContainsFunc(known, func(r *storage.EventRecord) bool { return r.EventID == id && r.StreamPos != 0 && !r.Outlier }) {
			out = append(out, id)
		}
	}
	return out, nil
}

// MissingAuthEvents returns the auth events the events name that this
// server lacks and the events do not include: what to fetch (with
// /event_auth) before InputHistorical can check them.
func (rs *Roomserver) MissingAuthEvents(ctx context.Context, events []*pdu.Event) ([]string, error) {
	have := make(map[string]bool, len(events))
	var ids []string
	for _, ev := range events {
		have[ev.EventID()] = true
	}
	for _, ev := range events {
		for _, id := range ev.AuthEventIDs() {
			if !have[id] && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	known, err := rs.db.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range known {
		have[r.EventID] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// InputHistorical stores history received late: authChain (events the
// history's auth events need) as outliers, then events in the timeline
// before everything the room holds, each checked for signatures and
// against its auth events (events that fail, or whose auth events are
// unknown, are stored rejected, outside the timeline; events with bad
// signatures are dropped). It returns how many events entered the
// timeline.
func (rs *Roomserver) InputHistorical(ctx context.Context, roomID string, events, authChain []*pdu.Event) (int, error) {
	ver, err := rs.RoomVersion(ctx, roomID)
	if err != nil {
		return 0, err
	}
	chain, _ := rs.checkAllSignatures(ctx, roomID, ver, nil, authChain)
	history, _ := rs.checkAllSignatures(ctx, roomID, ver, nil, events)
	// Oldest last: positions are handed out downwards.
	slices.SortStableFunc(history, func(a, b *pdu.Event) int {
		switch {
		case a.Depth() > b.Depth():
			return -1
		case a.Depth() < b.Depth():
			return 1
		}
		return 0
	})
	added := 0
	_, err = rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		added = 0
		rc, err := w.room(ctx, roomID)
		if err != nil {
			return nil, err
		}
		if _, err := w.storeOutliers(ctx, rc, chain); err != nil {
			return nil, err
		}
		// The history's own events are auth events of each other: store
		// them parents first, then give the accepted ones positions. The
		// auth events held already (the room's state since the join, the
		// chain just stored) go with them: storeOutliers checks an event
		// only against auth events among those it is given, and would
		// reject one whose auth events are all held but not in the batch.
		held, err := w.heldAuthEvents(ctx, rc, history)
		if err != nil {
			return nil, err
		}
		stored, err := w.storeOutliers(ctx, rc, append(held, history...))
		if err != nil {
			return nil, err
		}
		pos, err := w.tx.LowestStreamPos(ctx)
		if err != nil {
			return nil, err
		}
		for _, ev := range history {
			s, ok := stored[ev.EventID()]
			if !ok || s.rejected {
				continue
			}
			recs, err := w.tx.EventsByID(ctx, []string{ev.EventID()})
			if err != nil {
				return nil, err
			}
			if len(recs) == 0 || !recs[0].Outlier {
				continue // in the timeline already
			}
			pos--
			if err := w.tx.MakeHistorical(ctx, s.nid, pos); err != nil {
				return nil, err
			}
			if err := w.recordRelation(ctx, rc.room.NID, ev, s.nid, pos); err != nil {
				return nil, err
			}
			added++
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return 0, fmt.Errorf("backfill of %s: %w", roomID, err)
	}
	return added, nil
}

// heldAuthEvents returns the stored auth events of events that are not
// among them.
func (w *writer) heldAuthEvents(ctx context.Context, rc *roomCtx, events []*pdu.Event) ([]*pdu.Event, error) {
	named := make(map[string]bool, len(events))
	for _, ev := range events {
		named[ev.EventID()] = true
	}
	var ids []string
	add := func(id string) {
		if !named[id] {
			named[id] = true
			ids = append(ids, id)
		}
	}
	for _, ev := range events {
		for _, id := range ev.AuthEventIDs() {
			add(id)
		}
		if rc.ver.CreateEventIsRoomID {
			add("$" + strings.TrimPrefix(rc.room.RoomID, "!")) // the create event, an auth event of all
		}
	}
	recs, err := w.tx.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	return parseRecords(recs)
}
