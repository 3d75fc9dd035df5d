package syncapi

// Running parked /sync requests. Arrivals, the notifier's wake-ups and
// the long-polls' timers queue them here; one goroutine takes everything
// queued. New requests are authenticated and parsed on the workers, a few
// to a job, and queued again. The others are grouped by flight key and
// each group is run on a goroutine of its own.
//
// A group is identical requests (the same user, device, token and
// filter: one client's several connections, or a client that retried),
// so it needs one build, not one each. Every member registers its new
// waiter before that build starts, as a request joining a flight would.
// A message to a room of thousands of long-polls thus costs one goroutine
// and one build per distinct request, rather than one goroutine per
// connection all contending for the same flights.

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/internal/httputil"
)

type resumer struct {
	a      *API
	mu     sync.Mutex
	queue  []*longPoll
	signal chan struct{} // one pending signal at most
	stop   chan struct{}
	done   chan struct{}
}

func newResumer(a *API) *resumer {
	r := &resumer{a: a, signal: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// add queues lp. It may run under the notifier's lock.
func (r *resumer) add(lp *longPoll) {
	r.mu.Lock()
	r.queue = append(r.queue, lp)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *resumer) run() {
	defer close(r.done)
	for {
		select {
		case <-r.signal:
		case <-r.stop:
			return
		}
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.mu.Unlock()
		groups := make(map[flightKey][]*longPoll)
		var arrived []*longPoll
		for _, lp := range batch {
			if lp.httpReq != nil {
				if arrived = append(arrived, lp); len(arrived) == startChunk {
					go r.a.startPolls(arrived)
					arrived = nil
				}
				continue
			}
			k := keyOf(lp.req)
			groups[k] = append(groups[k], lp)
		}
		if len(arrived) > 0 {
			go r.a.startPolls(arrived)
		}
		for _, g := range groups {
			go r.a.resumeGroup(g)
		}
	}
}

// close stops the resumer; nothing may be queued afterwards.
func (r *resumer) close() {
	close(r.stop)
	<-r.done
}

// startChunk is how many arrived requests one worker job starts: enough
// to make a burst of arrivals few jobs, few enough to spread it over the
// workers.
const startChunk = 16

// groupContext is a context for work on behalf of lps, ending at the
// earliest of their request deadlines.
func groupContext(lps []*longPoll) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(httputil.DefaultTimeout)
	for _, lp := range lps {
		if d := lp.parked.Deadline(); !d.IsZero() && d.Before(deadline) {
			deadline = d
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}

// startPolls authenticates and parses arrived requests on a worker, then
// queues them to be built; the refused ones are answered.
func (a *API) startPolls(lps []*longPoll) {
	ctx, cancel := groupContext(lps)
	defer cancel()
	errs := make([]error, len(lps))
	// Without ctx: once queued, the job runs, and the requests are
	// answered after it.
	_ = a.workers.do(context.Background(), func() {
		for i, lp := range lps {
			// The request's own context: its logs carry its ID.
			rctx, cancel := context.WithDeadline(lp.parked.Context(), lp.parked.Deadline())
			errs[i] = lp.start(rctx)
			cancel()
		}
	})
	for i, lp := range lps {
		if err := errs[i]; err != nil {
			a.settle(ctx, lp, func() { lp.answer(ctx, nil, err) })
			continue
		}
		a.resumer.add(lp)
	}
}

// resumeGroup runs long-polls with one flight key: the timed-out ones are
// answered, those whose clients left are dropped, and the others (arrived
// or woken) are built once, then answered or parked again.
func (a *API) resumeGroup(g []*longPoll) {
	ctx, cancel := groupContext(g)
	defer cancel()
	woken := g[:0]
	for _, lp := range g {
		switch {
		case lp.fresh:
			lp.fresh = false
		case lp.resumed == resumedByTimeout:
			a.settle(ctx, lp, func() { lp.answer(ctx, lp.timeout(), nil) })
			continue
		case lp.resumed == resumedByHangUp:
			a.settle(ctx, lp, lp.abandon)
			continue
		default:
			lp.timer.Stop()
			lp.woke()
		}
		lp.register()
		woken = append(woken, lp)
	}
	if len(woken) == 0 {
		return
	}
	f, err := a.buildShared(ctx, woken[0].req)
	for _, lp := range woken {
		a.settle(ctx, lp, func() {
			if err != nil {
				lp.unregister()
				lp.answer(ctx, nil, err)
				return
			}
			answer, wait, reread := f, false, false
			if wait, reread = lp.consider(f); reread {
				var berr error
				if answer, wait, berr = lp.build(ctx); berr != nil {
					lp.answer(ctx, nil, berr)
					return
				}
			}
			if wait {
				lp.sleep()
			} else {
				lp.answer(ctx, answer, nil)
			}
		})
	}
}

// settle runs step, which answers lp or parks it again; a panic in it is
// logged and answered with a 500, as the HTTP middleware would.
func (a *API) settle(ctx context.Context, lp *longPoll, step func()) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		pctx := ctx
		if lp.parked != nil {
			pctx = lp.parked.Context()
		}
		httputil.Logger(pctx).ErrorContext(pctx, "panic resuming a /sync", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if lp.parked != nil && lp.state.Load() == pollRunning {
			lp.answer(ctx, nil, fmt.Errorf("panic: %v", v))
		}
	}()
	step()
}
