package syncapi

// A small pool of goroutines does the database reads and the encoding of
// /sync responses (and authenticates and parses parked /sync requests), so
// that the goroutines that wait stay small: those of long-polls that could
// not be parked (HTTP/2), and those of the resumer waiting for a build.
//
// A goroutine's stack grows to fit the deepest call it makes and shrinks
// only slowly afterwards; the SQLite driver's calls are deep. If each of
// 5,000 held long-polls ran its own reads, each would keep a stack of
// tens of kilobytes while it waits, and new goroutines would start big (the
// runtime sizes them by the average). With the pool, a waiting request is
// a parked goroutine of a few kilobytes, and the reads of thousands of
// syncs woken at once queue for a bounded number of workers instead of
// all contending for the database at the same moment.

import (
	"context"
	"runtime"
	"sync"
)

type workerPool struct {
	jobs chan func()
	wg   sync.WaitGroup
}

func newWorkerPool() *workerPool {
	n := max(8, 4*runtime.GOMAXPROCS(0))
	p := &workerPool{jobs: make(chan func())}
	for range n {
		p.wg.Go(func() {
			for job := range p.jobs {
				job()
			}
		})
	}
	return p
}

// do runs f on a worker and waits for it. When ctx ends first, do returns
// ctx's error; f still runs (or has started) and must watch ctx itself.
func (p *workerPool) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case p.jobs <- func() { defer close(done); f() }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onWorker runs f on a worker and returns its results; when ctx ends
// first, it returns ctx's error (f's results are then dropped).
func onWorker[T any](ctx context.Context, p *workerPool, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	out := make(chan result, 1) // f may finish after the caller gave up
	if err := p.do(ctx, func() {
		v, err := f()
		out <- result{v, err}
	}); err != nil {
		var zero T
		return zero, err
	}
	r := <-out
	return r.v, r.err
}

// submit hands f to a worker without waiting for it; false when ctx ended
// before a worker took it.
func (p *workerPool) submit(ctx context.Context, f func()) bool {
	select {
	case p.jobs <- f:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *workerPool) close() {
	close(p.jobs)
	p.wg.Wait()
}
