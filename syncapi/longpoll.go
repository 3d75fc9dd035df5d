package syncapi

// The wait of a /sync long-poll. A long-poll builds its response; when
// there is nothing to tell (an incremental sync with no news) it waits
// until the notifier wakes it or its timeout passes, then builds again.
//
// Waiting is where thousands of clients spend nearly all their time, so it
// must be cheap. When the connection allows it (HTTP/1.1), the request is
// parked as it arrives (serveSync, httputil.Park): the handler's goroutine
// returns, net/http lets go of its buffers, and what remains while the
// long-poll waits is the longPoll below, the notifier's waiter and a
// timer, about a kilobyte. The resumer (resume.go) runs its steps:
// authentication and parsing on a worker, then builds, each started by
// the arrival, a wake-up or the timeout, until it answers. A long-poll that
// cannot be parked (HTTP/2) runs the same steps in its handler's
// goroutine.

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// maxRereads bounds the immediate re-reads of one wait (see consider).
const maxRereads = 3

// longPoll is one /sync from its first build to its answer. Its fields
// are used by one goroutine at a time: the handler's, then (when parked)
// the resumer's.
type longPoll struct {
	a        *API
	req      *syncRequest
	deadline time.Time
	covered  int64 // the stream position the client's token covers
	rereads  int

	// While waiting: the registered waiter, and the last (empty) build,
	// which is the answer if the timeout passes first.
	w *waiter
	f *flight

	// When parked.
	parked   *httputil.Parked
	httpReq  *http.Request // until authenticated and parsed (start)
	fresh    bool          // started, not built yet
	timer    *time.Timer
	watching bool         // the connection is watched for a hangup
	state    atomic.Int32 // pollParked while it waits
	resumed  resumeCause  // why it was resumed, when it waited
}

// resumeCause is what ended a parked long-poll's wait.
type resumeCause uint8

const (
	resumedByWake resumeCause = iota
	resumedByTimeout
	resumedByHangUp // the client went away
)

const (
	pollRunning int32 = iota
	pollParked
)

func (a *API) newLongPoll(req *syncRequest) *longPoll {
	lp := &longPoll{a: a}
	lp.setRequest(req)
	return lp
}

func (lp *longPoll) setRequest(req *syncRequest) {
	lp.req = req
	lp.deadline = time.Now().Add(req.timeout)
	if req.since != nil {
		lp.covered = req.since.Pos
	}
}

// start authenticates and parses a parked request; it runs on a worker.
func (lp *longPoll) start(ctx context.Context) error {
	a, r := lp.a, lp.httpReq.WithContext(ctx)
	lp.httpReq = nil
	d, err := a.auth.Authenticate(r)
	if err != nil {
		return err
	}
	req, err := a.parseSyncRequest(r, d)
	if err != nil {
		return err
	}
	a.presence.syncing(d.UserID, req.setPresence)
	lp.setRequest(req)
	lp.fresh = true
	return nil
}

// register registers the long-poll's waiter. It comes before the database
// is read, so nothing committed after the read can be missed: the
// commit's wake-up (from the bus) arrives after the registration and wakes
// the waiter. No loop polls the database.
func (lp *longPoll) register() {
	// A parked long-poll is woken through onWake (sleep); one waiting in
	// its goroutine selects on the waiter's channel.
	lp.w = lp.a.notifier.register(lp.req.userID, lp.covered, lp.parked == nil)
}

// unregister removes the waiter (woken or not).
func (lp *longPoll) unregister() {
	lp.a.notifier.unregister(lp.req.userID, lp.w)
	lp.w = nil
}

// consider decides what to do with f, built after register: answer with
// it, wait (f is empty), or build again at once (reread).
func (lp *longPoll) consider(f *flight) (wait, reread bool) {
	a, req := lp.a, lp.req
	resp := f.resp
	a.notifier.setRooms(req.userID, f.joined)
	if !resp.empty || req.since == nil || req.fullState || time.Until(lp.deadline) <= 0 || a.draining.Load() {
		lp.unregister()
		return false, false
	}
	// From here the response is empty: the next one starts where it
	// ends, so the typing and stream parts of the token advance.
	a.notifier.advance(lp.w, resp.pos)
	if a.notifier.latest() > resp.pos && lp.rereads < maxRereads {
		// Something was written after the read and notified before
		// setRooms told the notifier about a room: look again.
		lp.rereads++
		lp.unregister()
		lp.covered = resp.pos
		return false, true
	}
	lp.f = f
	return true, false
}

// build builds the response until there is an answer (f) or the
// long-poll should wait (wait: lp.w is registered, lp.f the empty
// response).
func (lp *longPoll) build(ctx context.Context) (f *flight, wait bool, err error) {
	for {
		lp.register()
		f, err := lp.a.buildShared(ctx, lp.req)
		if err != nil {
			lp.unregister()
			return nil, false, err
		}
		wait, reread := lp.consider(f)
		if !reread {
			return f, wait, nil
		}
	}
}

// woke prepares the build after a wake-up: the waiter is gone, and the
// next build covers what the last one did.
func (lp *longPoll) woke() {
	lp.covered = lp.f.resp.pos
	lp.rereads = 0
	lp.w = nil
}

// timeout gives the answer when the wait timed out: the last empty build.
func (lp *longPoll) timeout() *flight {
	lp.unregister()
	return lp.f
}

// waitHere waits in the calling goroutine (the connection could not be
// parked) and returns the answer.
func (lp *longPoll) waitHere(ctx context.Context) (*flight, error) {
	timer := time.NewTimer(time.Until(lp.deadline))
	defer timer.Stop()
	for {
		select {
		case <-lp.w.ch:
			lp.woke()
		case <-timer.C:
			return lp.timeout(), nil
		case <-ctx.Done():
			lp.unregister()
			return nil, ctx.Err()
		}
		f, wait, err := lp.build(ctx)
		if err != nil || !wait {
			return f, err
		}
	}
}

// sleep waits for the wake-up, the timer or the client's hangup,
// whichever comes first. From the moment the state is pollParked, any of
// them may resume the long-poll on another goroutine, so what the
// resumption uses is set before, and each source that fired while the
// state was not yet parked is looked at again after.
func (lp *longPoll) sleep() {
	w, p := lp.w, lp.parked
	if !lp.watching {
		// From the first wait on: the answer usually comes at once.
		lp.watching = true
		p.OnHangUp(lp.hangUp)
	}
	if lp.timer == nil {
		lp.timer = time.AfterFunc(time.Until(lp.deadline), lp.timerFired)
	} else {
		lp.timer.Reset(time.Until(lp.deadline))
	}
	lp.state.Store(pollParked)
	if !time.Now().Before(lp.deadline) {
		lp.timerFired()
	}
	if !lp.a.notifier.onWake(w, lp.wakeUp) {
		lp.wakeUp() // woken before the callback was set
	}
	if p.Gone() {
		lp.hangUp()
	}
}

// resume queues a waiting long-poll for the resumer, unless something
// else already has.
func (lp *longPoll) resume(cause resumeCause) {
	if lp.state.CompareAndSwap(pollParked, pollRunning) {
		lp.resumed = cause
		lp.a.resumer.add(lp)
	}
}

// wakeUp is the waiter's wake-up callback; it runs under the notifier's
// lock.
func (lp *longPoll) wakeUp() { lp.resume(resumedByWake) }

// timerFired runs when the deadline passes. (A timer that fires after a
// wake-up, when the long-poll has parked again, still means the deadline
// has passed.)
func (lp *longPoll) timerFired() { lp.resume(resumedByTimeout) }

// hangUp is the parked request's hangup callback: the client is gone. A
// long-poll that is running when it comes notices it when it would wait
// again (sleep).
func (lp *longPoll) hangUp() { lp.resume(resumedByHangUp) }

// abandon ends a long-poll whose client went away.
func (lp *longPoll) abandon() {
	if lp.w != nil {
		lp.unregister()
	}
	if lp.timer != nil {
		lp.timer.Stop()
	}
	p := lp.parked
	lp.parked = nil
	defer lp.a.parked.Done()
	p.Abandon()
}

// answer ends a parked long-poll.
func (lp *longPoll) answer(ctx context.Context, f *flight, err error) {
	p := lp.parked
	lp.parked = nil
	defer lp.a.parked.Done()
	if err == nil {
		var body []byte
		if body, err = lp.a.encoded(ctx, f); err == nil {
			p.Respond(200, body)
			return
		}
	}
	p.RespondError(err)
}
