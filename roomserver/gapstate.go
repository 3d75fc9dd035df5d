package roomserver

import (
	"context"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// InputWithState puts a received event whose prev events this server
// lacks and cannot get (a gap longer than /get_missing_events fills, after
// an outage) through the input path, with the state before it as another
// server gave it (GET /state?event_id=: the state and its auth chain).
// That is the spec's way past such a gap (server-server-api, "PDUs": "the
// receiving server ... may request the state at the event").
//
// The state and auth chain are checked and stored as ImportJoin stores a
// join's: every signature checked (failures dropped), each event against
// its own auth events (failures stored rejected and left out of the
// state), as outliers. The event then goes through stages 2 to 5 of
// InputReceived with that state as the state before it: rejected if it
// fails the auth rules against it, soft-failed against the current state.
// Accepted, it becomes a forward extremity beside those of the room's
// side of the gap, and the current state is the resolution of both, as
// for any fork; the gap's events can be backfilled later.
func (rs *Roomserver) InputWithState(ctx context.Context, roomID string, ev *pdu.Event, state, authChain []*pdu.Event) (InputResult, error) {
	res := InputResult{EventID: ev.EventID()}
	if ev.RoomID() != roomID {
		res.Dropped = &BadRequestError{Reason: fmt.Sprintf("event %s is in room %s, not %s", ev.EventID(), ev.RoomID(), roomID)}
		return res, nil
	}
	good, err := rs.checkSignatures(ctx, ev)
	if err != nil {
		res.Dropped = err
		return res, nil
	}
	events, stateIDs := rs.checkAllSignatures(ctx, roomID, ev.Version(), state, authChain)
	_, err = rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		rc, err := w.room(ctx, roomID)
		if err != nil {
			return nil, err
		}
		if ev.Version() != rc.ver {
			res.Dropped = &BadRequestError{Reason: fmt.Sprintf("event %s has room version %s, the room %s", ev.EventID(), ev.Version().ID, rc.ver.ID)}
			return nil, nil
		}
		snap, err := w.importState(ctx, rc, events, stateIDs)
		if err != nil {
			return nil, err
		}
		if snap == 0 {
			res.Dropped = &BadRequestError{Reason: "the state given for event " + ev.EventID() + " is empty"}
			return nil, nil
		}
		known, err := readJobEvents(ctx, w.tx, roomID, []*pdu.Event{good})
		if err != nil {
			return nil, err
		}
		r, err := w.inputReceived(ctx, roomID, good, snap, known)
		if err != nil {
			return nil, err
		}
		res = r
		res.EventID = ev.EventID()
		if r.Output != nil {
			return []Output{*r.Output}, nil
		}
		return nil, nil
	})
	if err != nil {
		return InputResult{}, err
	}
	return res, nil
}
