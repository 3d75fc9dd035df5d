package syncapi

// GET /sync (client-server-api "Syncing"): the handler and the
// parameters. The long-poll's steps are in longpoll.go.

import (
	"net/http"
	"strconv"
	"time"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// maxSyncTimeout bounds a long-poll below the request deadline
// (httputil.DefaultTimeout, 90s): a client asking for longer gets an empty
// answer after this, as the spec allows.
const maxSyncTimeout = 60 * time.Second

// syncRequest is a parsed /sync request.
type syncRequest struct {
	userID, deviceID string
	filter           *Filter
	since            *synctoken.Token // nil for an initial sync
	fullState        bool
	useStateAfter    bool
	timeout          time.Duration
	setPresence      string
	filterParam      string // the filter parameter as given (shared builds)
}

// serveSync serves /sync. Over HTTP/1.1 the request is parked at once
// (httputil.Park): everything else, from authentication to the answer,
// happens off the request's goroutine (longpoll.go, resume.go), so a
// request waiting for a worker, a build or news costs a few hundred bytes
// rather than net/http's per-request goroutines and buffers. Thousands of
// clients syncing at once (reconnecting after a restart, or woken by one
// message) then never hold thousands of those.
func (a *API) serveSync(w http.ResponseWriter, r *http.Request) {
	// Counted before the connection leaves net/http: a graceful shutdown
	// waits for the server's requests, then for the parked ones (Close).
	a.parked.Add(1)
	if p, ok := httputil.Park(w, r); ok {
		// The request is kept until it is authenticated and parsed (its
		// context ends now; start gives it another).
		a.resumer.add(&longPoll{a: a, parked: p, httpReq: r})
		return
	}
	a.parked.Done()
	// The token lookup runs on a worker: its deep database calls would
	// otherwise grow the stack of the goroutine that waits.
	a.requiredOnWorker(a.getSync)(w, r)
}

// getSync serves a /sync that could not be parked (HTTP/2), waiting in
// its handler's goroutine.
func (a *API) getSync(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	req, err := onWorker(r.Context(), a.workers, func() (*syncRequest, error) { return a.parseSyncRequest(r, d) })
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.presence.syncing(d.UserID, req.setPresence)
	lp := a.newLongPoll(req)
	f, wait, err := lp.build(r.Context())
	if err == nil && wait {
		f, err = lp.waitHere(r.Context())
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := a.encoded(r.Context(), f)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteRawJSON(w, http.StatusOK, body)
}

func (a *API) parseSyncRequest(r *http.Request, d *auth.Device) (*syncRequest, error) {
	q := r.URL.Query()
	req := &syncRequest{userID: d.UserID, deviceID: d.DeviceID}
	if q.Has("from") {
		// /events took from; /sync takes since. Say so, as Synapse does.
		return nil, httputil.InvalidParam("'from' is not a /sync parameter; did you mean 'since'?")
	}
	if s := q.Get("since"); s != "" {
		t, err := synctoken.Parse("since", s)
		if err != nil {
			return nil, err
		}
		if t.Pos < 0 {
			// Only /messages pages below position 0 (backfilled history).
			return nil, httputil.InvalidParam("invalid since token " + strconv.Quote(s))
		}
		req.since = &t
	}
	if s := q.Get("timeout"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return nil, httputil.InvalidParam("timeout must be a non-negative integer of milliseconds")
		}
		req.timeout = min(time.Duration(min(ms, int64(maxSyncTimeout/time.Millisecond)))*time.Millisecond, maxSyncTimeout)
	}
	var err error
	if req.fullState, err = boolParam(q.Get("full_state"), "full_state"); err != nil {
		return nil, err
	}
	// use_state_after (spec v1.16), also under its MSC4222 name.
	if req.useStateAfter, err = boolParam(firstNonEmpty(q.Get("use_state_after"), q.Get("org.matrix.msc4222.use_state_after")), "use_state_after"); err != nil {
		return nil, err
	}
	req.setPresence = q.Get("set_presence")
	if req.setPresence != "" && !validPresence(req.setPresence) {
		return nil, httputil.InvalidParam("set_presence must be online, unavailable or offline")
	}
	req.filterParam = q.Get("filter")
	if req.filter, err = a.syncFilter(r.Context(), d.UserID, req.filterParam); err != nil {
		return nil, err
	}
	return req, nil
}

func boolParam(s, name string) (bool, error) {
	switch s {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, httputil.InvalidParam(name + " must be true or false")
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
