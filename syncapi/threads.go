package syncapi

// GET /v1/rooms/{roomId}/threads (client-server-api "Querying threads in a
// room", threads_list.yaml): a room's thread roots, newest activity first.
//
// event_threads (syncapi/relations) keeps each thread's latest reply; a
// page is the threads whose latest reply is at or before the from token,
// and next_batch is the position just before the last one's, so a thread
// is listed once unless it gets a new reply meanwhile (it then moves to
// the top, where a client refreshing the list finds it).

import (
	"net/http"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

const (
	defaultThreadsLimit = 5
	maxThreadsLimit     = 100
)

type threadsResponse struct {
	Chunk     []jsonRaw `json:"chunk"`
	NextBatch string    `json:"next_batch,omitempty"`
}

func (a *API) getThreads(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	participant := ""
	switch q.Get("include") {
	case "", "all":
	case "participated":
		participant = d.UserID
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("include must be all or participated"))
		return
	}
	limit, err := limitParam(q.Get("limit"), defaultThreadsLimit, maxThreadsLimit)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if limit == 0 {
		httputil.WriteError(w, r, httputil.InvalidParam("limit must be greater than zero"))
		return
	}
	var from *synctoken.Token
	if s := q.Get("from"); s != "" {
		t, err := synctoken.Parse("from", s)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		from = &t
	}
	ctx := r.Context()
	rr, err := a.openRoomForReading(ctx, roomID, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ignored, err := a.ignoredUsers(ctx, d.UserID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	cursor := rr.upto
	if from != nil {
		cursor = min(from.Pos, rr.upto)
	}
	resp := threadsResponse{Chunk: []jsonRaw{}}
	var roots []*storage.EventRecord
	more := false
	// Roots the user may not see are skipped; read on until the page is
	// full, within a bound.
	for round := 0; round < 8 && len(roots) < limit; round++ {
		batch := limit - len(roots) + 1
		threads, err := a.db.Threads(ctx, storage.ThreadsQuery{RoomNID: rr.roomNID, From: cursor, Limit: batch, Participant: participant})
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		ids := make([]string, len(threads))
		for i, t := range threads {
			ids[i] = t.RootID
		}
		evs, err := a.db.EventsByID(ctx, ids)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		byID := make(map[string]*storage.EventRecord, len(evs))
		for _, ev := range evs {
			byID[ev.EventID] = ev
		}
		more = len(threads) == batch
		for _, t := range threads {
			if len(roots) == limit {
				break
			}
			cursor = t.LatestPos - 1
			root := byID[t.RootID]
			if root == nil || root.RoomNID != rr.roomNID || root.StreamPos == 0 || root.StreamPos > rr.upto ||
				!rr.vis.canSee(root) {
				continue
			}
			roots = append(roots, root)
		}
		if !more {
			break
		}
	}
	if more {
		resp.NextBatch = synctoken.Pagination(cursor)
	}
	opts, err := a.roomFormatOpts(ctx, d, roots)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.bundleRoom(ctx, opts, d.UserID, ignored, rr, roots); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	for _, root := range roots {
		if ignored[root.Sender] {
			// threads_list.yaml: a root from an ignored user is returned
			// redacted, as a client aggregating the thread itself would
			// show it.
			root = redactedCopy(root)
		}
		resp.Chunk = append(resp.Chunk, opts.Format(root))
	}
	httputil.WriteJSON(w, r, http.StatusOK, resp)
}

// redactedCopy returns ev with its JSON redacted (ev itself unchanged); ev
// as it is when the redaction fails (an unknown room version).
func redactedCopy(ev *storage.EventRecord) *storage.EventRecord {
	ver, err := pdu.GetRoomVersion(ev.RoomVersion)
	if err != nil {
		return ev
	}
	red, err := pdu.Redact(ev.JSON, ver)
	if err != nil {
		return ev
	}
	c := *ev
	c.JSON = red
	return &c
}
