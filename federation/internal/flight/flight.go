// Package flight collapses concurrent calls for the same key into one:
// while a call for a key runs, later callers for that key wait for its
// result instead of starting their own (Go's x/sync/singleflight, which the
// module does not depend on, with context support).
package flight

import (
	"context"
	"sync"
)

// Group runs at most one call per key at a time.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// Do runs fn for key, or waits for the call for key already running and
// returns its result. fn gets a context that keeps ctx's values but not
// its cancellation, so that the first caller giving up does not fail the
// others; fn must bound its own duration. A caller whose ctx ends while
// waiting gets ctx's error, and the call goes on for the others.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(ctx context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[K]*call[V]{}
	}
	c, running := g.calls[key]
	if !running {
		c = &call[V]{done: make(chan struct{})}
		g.calls[key] = c
		go func() {
			c.val, c.err = fn(context.WithoutCancel(ctx))
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
