package syncapi

// GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
// (client-server-api "Relationships API", relations.yaml): the children of
// an event, paginated like /messages.
//
// Pages follow stream order with /messages' tokens (a /sync or /messages
// token is a valid from or to): backwards from s<p>, children at or before
// p, newest first; forwards, children after p, oldest first. The children
// come from event_relations (syncapi/relations), with history visibility
// and ignored users applied in the query, so a page is one statement and
// consecutive pages neither repeat nor skip a child.

import (
	"errors"
	"math"
	"net/http"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// Page sizes of /relations (Synapse's default) and its cap.
const (
	defaultRelationsLimit = 5
	maxRelationsLimit     = 100
	// recurseDepth is how many levels of relationships recurse=true
	// follows: the spec asks for at least 3.
	recurseDepth = 3
)

type relationsResponse struct {
	Chunk          []jsonRaw `json:"chunk"`
	NextBatch      string    `json:"next_batch,omitempty"`
	PrevBatch      string    `json:"prev_batch,omitempty"`
	RecursionDepth *int      `json:"recursion_depth,omitempty"`
}

func (a *API) getRelations(w http.ResponseWriter, r *http.Request, d *auth.Device) {
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
	q := r.URL.Query()
	backwards := true
	switch q.Get("dir") {
	case "", "b":
	case "f":
		backwards = false
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("dir must be b or f"))
		return
	}
	limit, err := limitParam(q.Get("limit"), defaultRelationsLimit, maxRelationsLimit)
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
	var depth *int
	switch q.Get("recurse") {
	case "":
	case "true":
		depth = new(int)
		*depth = recurseDepth
	case "false":
		depth = new(int)
		*depth = 1
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("recurse must be true or false"))
		return
	}

	ctx := r.Context()
	// The parent not existing and the user not being allowed to see it
	// are one answer (relations.yaml's 404).
	notFound := httputil.NotFound("event " + eventID + " not found")
	rr, err := a.openRoomForReading(ctx, roomID, d.UserID)
	if err != nil {
		if me, ok := errors.AsType[*httputil.Error](err); ok && me.Code == "M_FORBIDDEN" {
			err = notFound
		}
		httputil.WriteError(w, r, err)
		return
	}
	parents, err := a.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if len(parents) == 0 || parents[0].RoomNID != rr.roomNID || parents[0].StreamPos == 0 ||
		parents[0].StreamPos > rr.upto || !rr.vis.canSee(parents[0]) {
		httputil.WriteError(w, r, notFound)
		return
	}
	ignored, err := a.ignoredUsers(ctx, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}

	query := storage.RelationsQuery{
		RoomNID: rr.roomNID, Parent: eventID,
		RelType: httputil.PathVar(r, "relType"), EventType: httputil.PathVar(r, "eventType"),
		Depth: 1, Visible: rr.vis.ranges(rr.upto), NotSenders: keys(ignored),
		Backwards: backwards, Limit: limit + 1,
	}
	if depth != nil {
		query.Depth = *depth
	}
	// Unbounded below means below every position: history received late
	// over federation (backfill) is stored at negative ones.
	if backwards {
		query.From, query.To = rr.upto, math.MinInt64
	} else {
		query.From, query.To = math.MinInt64, rr.upto
	}
	if from != nil {
		query.From = min(from.Pos, rr.upto)
	}
	if to != nil {
		query.To = min(to.Pos, rr.upto)
	}
	children, err := a.db.RelationsPage(ctx, query)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	resp := relationsResponse{Chunk: []jsonRaw{}, RecursionDepth: depth}
	if from != nil {
		resp.PrevBatch = from.Raw
	}
	if len(children) > limit {
		children = children[:limit]
		last := children[len(children)-1].StreamPos
		if backwards {
			last--
		}
		resp.NextBatch = synctoken.Pagination(last)
	}
	opts, err := a.roomFormatOpts(ctx, d, children)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.bundleRoom(ctx, opts, d.UserID, ignored, rr, children); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	resp.Chunk = opts.FormatAll(children)
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// keys returns the keys of a set.
func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}
