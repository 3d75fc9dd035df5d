package syncapi

// GET /sync (client-server-api "Syncing"): parameters, and the long-poll.
//
// The long-poll registers a waiter with the notifier before reading the
// database, so nothing committed after the read can be missed: the
// commit's wake-up (from the bus) arrives after the registration and wakes
// the waiter, which reads again. No loop polls the database.

import (
	"context"
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

func (a *API) getSync(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	req, err := onWorker(r.Context(), a.workers, func() (*syncRequest, error) { return a.parseSyncRequest(r, d) })
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	a.presence.syncing(d.UserID, req.setPresence)
	resp, err := a.syncWait(r.Context(), req)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := a.encoded(r.Context(), resp)
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

// syncWait builds the response, and for an incremental sync with nothing
// to tell waits (up to the timeout) for something to happen, then builds
// it again.
func (a *API) syncWait(ctx context.Context, req *syncRequest) (*flight, error) {
	deadline := time.Now().Add(req.timeout)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	covered := int64(0)
	if req.since != nil {
		covered = req.since.Pos
	}
	rereads := 0
	for {
		w := a.notifier.register(req.userID, covered)
		f, err := a.buildShared(ctx, req)
		if err != nil {
			a.notifier.unregister(req.userID, w)
			return nil, err
		}
		resp := f.resp
		a.notifier.setRooms(req.userID, f.joined)
		remaining := time.Until(deadline)
		if !resp.empty || req.since == nil || req.fullState || remaining <= 0 || a.draining.Load() {
			a.notifier.unregister(req.userID, w)
			return f, nil
		}
		// From here the response is empty: the next one starts where it
		// ends, so the typing and stream parts of the token advance.
		a.notifier.advance(w, resp.pos)
		if a.notifier.latest() > resp.pos && rereads < 3 {
			rereads++
			// Something was written after the read and notified before
			// setRooms told the notifier about a room: look again.
			a.notifier.unregister(req.userID, w)
			covered = resp.pos
			continue
		}
		if timer == nil {
			timer = time.NewTimer(remaining)
		} else {
			timer.Reset(remaining)
		}
		select {
		case <-w.ch:
			covered = resp.pos
			rereads = 0
		case <-timer.C:
			a.notifier.unregister(req.userID, w)
			return f, nil
		case <-ctx.Done():
			a.notifier.unregister(req.userID, w)
			return nil, ctx.Err()
		}
	}
}
