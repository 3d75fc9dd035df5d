package syncapi

// Identical /sync requests running at the same time share one build:
// a client that times out and retries, or opens several connections with
// one access token, costs one read of the database, not one each (Synapse
// keeps such a response cache too). Requests are identical when the user,
// device and every parameter that shapes the response are.

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
)

type flightKey struct {
	userID, deviceID, since, filter string
	fullState, useStateAfter        bool
}

func keyOf(req *syncRequest) flightKey {
	k := flightKey{userID: req.userID, deviceID: req.deviceID, filter: req.filterParam,
		fullState: req.fullState, useStateAfter: req.useStateAfter}
	if req.since != nil {
		k.since = strconv.FormatInt(req.since.Pos, 10) + "_" + strconv.FormatInt(req.since.Typing, 10) + "_" + req.since.Instance
	}
	return k
}

// flight is one build and the requests waiting for it.
type flight struct {
	done    chan struct{}
	started bool // the build began reading (under flights.mu)
	resp    *syncResponse
	joined  []string
	err     error

	encodeOnce sync.Once
	encodedOK  atomic.Bool // body is set
	body       []byte
	encodeErr  error
}

type flights struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

// buildShared returns the response to req, built on a worker. A request
// identical to one whose build has not started yet joins it. (Not one that
// has started: its reads may predate this request's waiter, and a write
// between the two would then wake nobody.)
func (a *API) buildShared(ctx context.Context, req *syncRequest) (*flight, error) {
	key := keyOf(req)
	a.flights.mu.Lock()
	if a.flights.m == nil {
		a.flights.m = map[flightKey]*flight{}
	}
	f := a.flights.m[key]
	leader := f == nil || f.started
	if leader {
		f = &flight{done: make(chan struct{})}
		a.flights.m[key] = f
	}
	a.flights.mu.Unlock()
	if leader {
		// The build serves every request that joins it, so it does not end
		// with the leader's request.
		bctx := context.WithoutCancel(ctx)
		accepted := a.workers.submit(ctx, func() {
			a.flights.mu.Lock()
			f.started = true
			a.flights.mu.Unlock()
			f.resp, f.joined, f.err = a.buildSync(bctx, req)
			a.flights.mu.Lock()
			if a.flights.m[key] == f {
				delete(a.flights.m, key)
			}
			a.flights.mu.Unlock()
			close(f.done)
		})
		if !accepted {
			a.flights.mu.Lock()
			if a.flights.m[key] == f {
				delete(a.flights.m, key)
			}
			a.flights.mu.Unlock()
			f.err = ctx.Err()
			close(f.done)
			return nil, f.err
		}
	}
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// encoded returns the response as JSON, encoded once for all who share it.
// The encoding runs on a worker (its recursion is deep, see workers.go);
// the requests that come after it take the body without the hop.
func (a *API) encoded(ctx context.Context, f *flight) ([]byte, error) {
	if f.encodedOK.Load() {
		return f.body, nil
	}
	return onWorker(ctx, a.workers, func() ([]byte, error) {
		f.encodeOnce.Do(func() {
			f.body, f.encodeErr = json.Marshal(f.resp)
			f.encodedOK.Store(f.encodeErr == nil)
		})
		return f.body, f.encodeErr
	})
}
