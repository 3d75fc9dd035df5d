package federation

// Backfilling and retrieving missing events (server-server-api
// "Backfilling and retrieving missing events"): GET
// /_matrix/federation/v1/backfill/{roomId} and POST
// /get_missing_events/{roomId}. Both walk prev_events backwards from the
// events named, as Synapse does, and serve only to a server with a user
// joined to the room now (Synapse's "host in room" check), then only the
// events that server may see (roomserver.FilterVisibleToServer).

import (
	"container/heap"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	// MaxBackfill caps /backfill's limit, as Synapse.
	MaxBackfill = 100
	// MaxMissingEvents caps /get_missing_events' limit, as Synapse;
	// DefaultMissingEvents is the spec's default.
	MaxMissingEvents     = 20
	DefaultMissingEvents = 10
)

func (a *API) registerBackfill(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/backfill/{roomId}", a.getBackfill).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/get_missing_events/{roomId}", a.postMissingEvents).Methods(http.MethodPost)
}

// joinedRoom checks that the room exists (404), that its server ACL allows
// the origin and that the origin has a user joined to it now (403).
func (a *API) joinedRoom(r *http.Request, roomID string) error {
	ctx := r.Context()
	if _, err := a.rs.RoomVersion(ctx, roomID); err != nil {
		return notFoundRoom(err, roomID)
	}
	if err := a.checkACL(r, roomID); err != nil {
		return err
	}
	joined, err := a.rs.ServerJoined(ctx, roomID, Origin(ctx))
	if err != nil {
		return err
	}
	if !joined {
		return httputil.Forbidden("server " + Origin(ctx) + " is not in room " + roomID)
	}
	return nil
}

// getBackfill implements GET /_matrix/federation/v1/backfill/{roomId}: the
// events v (inclusive) and those before them, deepest first, up to limit.
func (a *API) getBackfill(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roomID := httputil.PathVar(r, "roomId")
	q := r.URL.Query()
	from := q["v"]
	if len(from) == 0 {
		httputil.WriteError(w, r, httputil.MissingParam("v (the events to start from) is required"))
		return
	}
	if q.Get("limit") == "" {
		httputil.WriteError(w, r, httputil.MissingParam("limit is required"))
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		httputil.WriteError(w, r, httputil.InvalidParam("limit must be a positive integer"))
		return
	}
	limit = min(limit, MaxBackfill)
	if err := a.joinedRoom(r, roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}

	// Breadth-first by depth: always take the deepest event not yet taken,
	// then queue its prev_events.
	var queue byDepth
	queued := map[string]bool{}
	push := func(ids []string) error {
		var want []string
		for _, id := range ids {
			if !queued[id] {
				queued[id] = true
				want = append(want, id)
			}
		}
		if len(want) == 0 {
			return nil
		}
		recs, err := a.db.EventsByID(ctx, want)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.RoomID == roomID {
				heap.Push(&queue, rec)
			}
		}
		return nil
	}
	if err := push(from); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var out []*storage.EventRecord
	for queue.Len() > 0 && len(out) < limit {
		rec := heap.Pop(&queue).(*storage.EventRecord)
		out = append(out, rec)
		se, err := roomserver.ParseRecord(rec)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if err := push(se.Event.PrevEventIDs()); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	a.writeVisible(w, r, out, func(pdus []json.RawMessage) any { return a.transaction(pdus) })
}

// missingEventsRequest is the body of /get_missing_events.
type missingEventsRequest struct {
	Limit          *int     `json:"limit"`
	MinDepth       int64    `json:"min_depth"`
	EarliestEvents []string `json:"earliest_events"`
	LatestEvents   []string `json:"latest_events"`
}

// postMissingEvents implements POST
// /_matrix/federation/v1/get_missing_events/{roomId}: the events before
// latest_events (which are not included), walking back breadth-first and
// not past earliest_events nor below min_depth, up to limit, oldest first.
func (a *API) postMissingEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roomID := httputil.PathVar(r, "roomId")
	var req missingEventsRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if req.EarliestEvents == nil || req.LatestEvents == nil {
		httputil.WriteError(w, r, httputil.BadJSON("earliest_events and latest_events are required"))
		return
	}
	limit := DefaultMissingEvents
	if req.Limit != nil {
		if *req.Limit < 1 {
			httputil.WriteError(w, r, httputil.InvalidParam("limit must be a positive integer"))
			return
		}
		limit = min(*req.Limit, MaxMissingEvents)
	}
	if err := a.joinedRoom(r, roomID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}

	seen := map[string]bool{}
	for _, id := range req.EarliestEvents {
		seen[id] = true
	}
	front := req.LatestEvents
	var out []*storage.EventRecord
	for len(front) > 0 && len(out) < limit {
		recs, err := a.db.EventsByID(ctx, front)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		var next []string
		for _, rec := range recs {
			if rec.RoomID != roomID {
				continue
			}
			se, err := roomserver.ParseRecord(rec)
			if err != nil {
				httputil.WriteError(w, r, err)
				return
			}
			for _, id := range se.Event.PrevEventIDs() {
				if !seen[id] {
					seen[id] = true
					next = append(next, id)
				}
			}
		}
		if len(next) == 0 {
			break
		}
		prevs, err := a.db.EventsByID(ctx, next)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		front = front[:0:0]
		for _, p := range prevs {
			if p.RoomID != roomID || p.Depth < req.MinDepth {
				continue
			}
			if len(out) < limit {
				out = append(out, p)
			}
			front = append(front, p.EventID)
		}
	}
	// Oldest first, as Synapse answers (its walk is newest first).
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	a.writeVisible(w, r, out, func(pdus []json.RawMessage) any { return map[string]any{"events": pdus} })
}

// byDepth is a max-heap of events by depth, then by stream position.
type byDepth []*storage.EventRecord

func (h byDepth) Len() int { return len(h) }
func (h byDepth) Less(i, j int) bool {
	if h[i].Depth != h[j].Depth {
		return h[i].Depth > h[j].Depth
	}
	return h[i].StreamPos > h[j].StreamPos
}
func (h byDepth) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *byDepth) Push(x any)   { *h = append(*h, x.(*storage.EventRecord)) }
func (h *byDepth) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
