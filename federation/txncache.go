package federation

import (
	"sync"
)

// txnCache answers a transaction sent again (same origin and txnId) with
// the first answer, without handling it again (server-server-api
// "Transactions": the txnId is for idempotency). A retry that arrives
// while the first is still being handled waits for its answer. It holds
// the last few answers of this process only, like Synapse's response
// cache: after a restart or a long time a replayed transaction is handled
// again, which the roomserver makes harmless (its events are duplicates).
type txnCache struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*txnEntry
	order []string // answered keys, oldest first, for eviction
}

type txnEntry struct {
	done chan struct{}
	resp []byte
	err  error
}

func newTxnCache(max int) *txnCache {
	return &txnCache{max: max, byKey: map[string]*txnEntry{}}
}

// do returns key's answer, from the cache or from handle. Failures are
// not remembered: the sender's retry is handled again.
func (c *txnCache) do(key string, handle func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e := c.byKey[key]; e != nil {
		c.mu.Unlock()
		<-e.done
		return e.resp, e.err
	}
	e := &txnEntry{done: make(chan struct{})}
	c.byKey[key] = e
	c.mu.Unlock()

	e.resp, e.err = handle()
	close(e.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil {
		delete(c.byKey, key)
		return e.resp, e.err
	}
	c.order = append(c.order, key)
	for len(c.order) > c.max {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	return e.resp, e.err
}
