package syncapi

// GET /rooms/{roomId}/messages (client-server-api "Getting events for a
// room"): paging through a room's history.
//
// Pages follow stream order, the order of sync timelines, so that /sync's
// prev_batch and next_batch are /messages tokens as they are (synctoken):
// a page going backwards from s<p> returns events at or before p, its end
// token is s<q-1> for its last (oldest) event q; going forwards from s<p> it
// returns events after p and ends at s<q>. Positions are unique and
// committed in order, so consecutive pages never repeat or skip an event,
// however many are sent meanwhile. History fetched from other servers when
// a client pages past the oldest event held (Backfiller) gets positions
// below every other (roomserver.InputHistorical), so it pages the same way.

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// Page sizes: the default and the most a request may ask for (Synapse's
// limits).
const (
	defaultMessagesLimit = 10
	maxMessagesLimit     = 1000
	// backfillBatch is the fewest events asked of another server when
	// /messages runs out of history.
	backfillBatch = 50
)

type messagesResponse struct {
	Start string    `json:"start"`
	End   string    `json:"end,omitempty"`
	Chunk []jsonRaw `json:"chunk"`
	State []jsonRaw `json:"state,omitempty"`
}

// roomReader is what reading a room's history needs: the room, and the
// visibility of its events to the requester.
type roomReader struct {
	roomID  string
	roomNID int64
	upto    int64
	vis     *roomVisibility
}

// openRoomForReading checks that userID may read roomID's history: 403
// M_FORBIDDEN for a user who was never in the room (unless it is world
// readable), and for an unknown room, whose existence is not revealed.
func (a *API) openRoomForReading(ctx context.Context, roomID, userID string) (*roomReader, error) {
	forbidden := httputil.Forbidden("you are not allowed to read the history of room " + roomID)
	room, err := a.db.Room(ctx, roomID)
	if err != nil {
		if isNotFound(err) {
			return nil, forbidden
		}
		return nil, err
	}
	upto, err := a.db.StreamPos(ctx)
	if err != nil {
		return nil, err
	}
	nid := room.NID
	vis, err := a.loadVisibility(ctx, nid, userID, upto)
	if err != nil {
		return nil, err
	}
	if !vis.everMember() && !vis.worldReadable() {
		return nil, forbidden
	}
	return &roomReader{roomID: roomID, roomNID: nid, upto: upto, vis: vis}, nil
}

func (a *API) getMessages(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	var backwards bool
	switch q.Get("dir") {
	case "b":
		backwards = true
	case "f":
	case "":
		httputil.WriteError(w, r, httputil.MissingParam("dir is required (b or f)"))
		return
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("dir must be b or f"))
		return
	}
	limit, filter, err := pageParams(q)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var from, to *synctoken.Token
	for _, p := range []struct {
		name string
		dst  **synctoken.Token
	}{{"from", &from}, {"to", &to}} {
		if s := q.Get(p.name); s != "" {
			t, err := synctoken.Parse(p.name, s)
			if err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			*p.dst = &t
		}
	}
	rr, err := a.openRoomForReading(r.Context(), roomID, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	resp, err := a.messages(r.Context(), rr, d, from, to, backwards, limit, filter)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// pageParams parses the limit and filter query parameters of /messages and
// /context.
func pageParams(q url.Values) (limit int, filter *RoomEventFilter, err error) {
	if limit, err = limitParam(q.Get("limit"), defaultMessagesLimit, maxMessagesLimit); err != nil {
		return 0, nil, err
	}
	filter = &RoomEventFilter{}
	if s := q.Get("filter"); s != "" {
		if filter, err = ParseRoomEventFilter([]byte(s)); err != nil {
			return 0, nil, err
		}
	}
	return limit, filter, nil
}

// limitParam parses a limit query parameter.
func limitParam(s string, def, maxLimit int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, httputil.InvalidParam("limit must be a non-negative integer")
	}
	return min(n, maxLimit), nil
}

func (a *API) messages(ctx context.Context, rr *roomReader, d *auth.Device, from, to *synctoken.Token, backwards bool, limit int, filter *RoomEventFilter) (*messagesResponse, error) {
	ignored, err := a.ignoredUsers(ctx, d.UserID)
	if err != nil {
		return nil, err
	}
	// cursor: events at or before it (backwards), after it (forwards);
	// bound: the other end, exclusive backwards and inclusive forwards.
	var cursor, bound int64
	if backwards {
		cursor, bound = rr.upto, math.MinInt64
	} else {
		cursor, bound = math.MinInt64, rr.upto
	}
	if from != nil {
		cursor = min(from.Pos, rr.upto)
	}
	if to != nil {
		bound = min(to.Pos, rr.upto)
	}
	resp := &messagesResponse{Start: synctoken.Pagination(cursor), Chunk: []jsonRaw{}}
	if from != nil {
		resp.Start = from.Raw // "the same as the value given in from"
	}
	var chunk []*storage.EventRecord
	scanned, backfilled := false, false
	// Read pages until the chunk is full: the visibility, the ignored users
	// and the filter may drop events, and a client should not get empty
	// pages while history remains. Bounded, so a filter that matches
	// nothing cannot make one request read the whole room.
	for round := 0; round < 8 && len(chunk) < limit; round++ {
		batch := limit - len(chunk)
		if round > 0 {
			batch = max(batch, 50)
		}
		evs, err := a.db.SyncRoomPage(ctx, rr.roomNID, cursor, bound, batch, backwards)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			scanned = true
			if backwards {
				cursor = ev.StreamPos - 1
			} else {
				cursor = ev.StreamPos
			}
			if rr.vis.canSee(ev) && !(ev.StateKey == nil && ignored[ev.Sender]) &&
				filter.matchesEvent(rr.roomID, ev.Type, ev.Sender, contentOf(ev)) {
				chunk = append(chunk, ev)
				if len(chunk) == limit {
					break
				}
			}
		}
		if len(evs) < batch {
			// The start (or the end) of the room's history here. Going
			// back, other servers may hold older history: fetch it
			// once, and read on if some came.
			if !backwards || backfilled || a.backfiller == nil || (to != nil && bound >= cursor) {
				break
			}
			backfilled = true
			n, err := a.backfiller.Backfill(ctx, rr.roomID, max(limit, backfillBatch))
			if err != nil {
				a.logger.Warn("backfill failed", "room_id", rr.roomID, "err", err)
			}
			if n == 0 {
				break
			}
			if a.search != nil {
				a.search.Wake() // backfilled history is not published
			}
			round-- // the fetched events are read in a new round
		}
	}
	if scanned {
		resp.End = synctoken.Pagination(cursor)
	}
	opts, err := a.roomFormatOpts(ctx, d, chunk)
	if err != nil {
		return nil, err
	}
	if err := a.bundleRoom(ctx, opts, d.UserID, ignored, rr, chunk); err != nil {
		return nil, err
	}
	for _, ev := range chunk {
		resp.Chunk = append(resp.Chunk, opts.Format(ev))
	}
	if filter.LazyLoadMembers && len(chunk) > 0 {
		newest := chunk[0]
		if !backwards {
			newest = chunk[len(chunk)-1]
		}
		members, err := a.membersAtSnapshot(ctx, newest.StateAfterNID, sendersOf(chunk))
		if err != nil {
			return nil, err
		}
		for _, ev := range members {
			resp.State = append(resp.State, opts.Format(ev))
		}
	}
	return resp, nil
}

// roomFormatOpts formats events with room IDs, with the device's
// transaction IDs on its own events.
func (a *API) roomFormatOpts(ctx context.Context, d *auth.Device, evs []*storage.EventRecord) (*clientevent.Options, error) {
	opts := newFormatOpts(nil, true)
	if err := opts.LoadReplaced(ctx, a.db, evs); err != nil {
		return nil, err
	}
	ids, err := a.db.TxnIDsOf(ctx, d.UserID, d.DeviceID, evs)
	if err != nil {
		return nil, err
	}
	opts.TxnIDs = ids
	return &opts, nil
}

// membersAtSnapshot returns the member events of users in a snapshot.
func (a *API) membersAtSnapshot(ctx context.Context, snapshot int64, users []string) ([]*storage.EventRecord, error) {
	b := &syncBuilder{a: a, ctx: ctx}
	evs, err := b.membersAt(snapshot, users)
	sortByPos(evs)
	return evs, err
}

func contentOf(ev *storage.EventRecord) func() []byte {
	return func() []byte { return []byte(gjson.GetBytes(ev.JSON, "content").Raw) }
}
