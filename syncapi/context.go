package syncapi

// GET /rooms/{roomId}/context/{eventId} (client-server-api "Event
// context"): an event with the events around it, the room state after
// them, and tokens to page further with /messages.

import (
	"math"
	"net/http"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

type contextResponse struct {
	Start        string    `json:"start"`
	End          string    `json:"end"`
	EventsBefore []jsonRaw `json:"events_before"`
	Event        jsonRaw   `json:"event"`
	EventsAfter  []jsonRaw `json:"events_after"`
	State        []jsonRaw `json:"state"`
}

func (a *API) getContext(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	eventID, err := eventIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	limit, filter, err := pageParams(r.URL.Query())
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	rr, err := a.openRoomForReading(ctx, roomID, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	notFound := httputil.NotFound("event " + eventID + " not found")
	evs, err := a.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if len(evs) == 0 || evs[0].RoomID != roomID || evs[0].StreamPos == 0 || evs[0].StreamPos > rr.upto || !rr.vis.canSee(evs[0]) {
		httputil.WriteError(w, r, notFound)
		return
	}
	ev := evs[0]
	ignored, err := a.ignoredUsers(ctx, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	keep := func(evs []*storage.EventRecord) []*storage.EventRecord {
		out := evs[:0:0]
		for _, e := range evs {
			if rr.vis.canSee(e) && !(e.StateKey == nil && ignored[e.Sender]) &&
				filter.matchesEvent(roomID, e.Type, e.Sender, contentOf(e)) {
				out = append(out, e)
			}
		}
		return out
	}
	// The limit is shared between before and after, as in Synapse.
	beforeLimit := limit / 2
	afterLimit := limit - beforeLimit
	var before, after []*storage.EventRecord
	if beforeLimit > 0 {
		// Backfilled history has negative positions: no lower bound.
		if before, err = a.db.SyncRoomPage(ctx, rr.roomNID, ev.StreamPos-1, math.MinInt64, beforeLimit, true); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	if afterLimit > 0 {
		if after, err = a.db.SyncRoomPage(ctx, rr.roomNID, ev.StreamPos, rr.upto, afterLimit, false); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	// Tokens from what was read, so /messages continues from there.
	start, end := ev.StreamPos-1, ev.StreamPos
	if len(before) > 0 {
		start = before[len(before)-1].StreamPos - 1
	}
	if len(after) > 0 {
		end = after[len(after)-1].StreamPos
	}
	last := ev
	if len(after) > 0 {
		last = after[len(after)-1]
	}
	before, after = keep(before), keep(after)

	all := append(append([]*storage.EventRecord{ev}, before...), after...)
	opts, err := a.roomFormatOpts(ctx, d, all)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.bundleRoom(ctx, opts, d.UserID, ignored, rr, all); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var members []string
	if filter.LazyLoadMembers {
		members = sendersOf(all)
	}
	state, err := a.db.SyncSnapshotState(ctx, last.StateAfterNID, !filter.LazyLoadMembers, members)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	sortByPos(state)
	resp := contextResponse{
		Start:        synctoken.Pagination(start),
		End:          synctoken.Pagination(end),
		Event:        opts.Format(ev),
		EventsBefore: []jsonRaw{},
		EventsAfter:  []jsonRaw{},
		State:        []jsonRaw{},
	}
	for _, e := range before {
		resp.EventsBefore = append(resp.EventsBefore, opts.Format(e))
	}
	for _, e := range after {
		resp.EventsAfter = append(resp.EventsAfter, opts.Format(e))
	}
	for _, e := range state {
		if filter.matchesEvent(roomID, e.Type, e.Sender, contentOf(e)) {
			resp.State = append(resp.State, opts.Format(e))
		}
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}
