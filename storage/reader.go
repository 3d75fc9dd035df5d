package storage

// Prepared statements, cached: how every read runs, outside transactions
// (db.read) and inside them (Tx.q), and the frequent writes of fixed text
// inside transactions (Tx.q too).
//
// Preparing a statement costs more than running it for the small queries
// the server makes (on SQLite, measured: three quarters of a query's time
// went to parsing and planning; on /sync, re-preparing the access token
// lookup alone was ~15% of the CPU), and database/sql prepares a statement
// anew for every QueryContext with text. A stmtCache keeps one *sql.Stmt
// per query text on a pool; database/sql prepares it once per connection
// and reuses it. Query files need not choose: DB read methods pass db.read,
// Tx methods tx.q, and both go through a cache.
//
// The cache is bounded (queries with an IN list have a text per list
// length, so the set of texts is open-ended) and evicts the statement used
// least recently. A statement is closed only once no query is starting on
// it; closing it while rows or transactions still use it is safe
// (database/sql finishes the close when they are done).
//
// In a transaction, a cached statement is bound to the transaction's
// connection (sql.Tx.StmtContext, which reuses what was prepared on that
// connection). A statement not cached yet runs unprepared and is prepared
// in the background: on SQLite the transaction holds the only writer
// connection, so preparing on the writer pool from inside it would wait for
// the transaction itself.

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
	"time"
)

// maxCachedStmts bounds the statements kept per pool. On PostgreSQL each is
// prepared on every pool connection that runs it, so this also bounds the
// server-side prepared statements per connection.
const maxCachedStmts = 512

// maxBackgroundPrepares bounds the statements being prepared in the
// background at once.
const maxBackgroundPrepares = 16

// stmtCache keeps prepared statements of one pool.
type stmtCache struct {
	pool *sql.DB

	mu        sync.Mutex
	stmts     map[string]*list.Element // query text → element of lru
	lru       list.List                // of *cachedStmt, most recently used first
	preparing map[string]bool          // texts being prepared in the background
	closed    bool
}

type cachedStmt struct {
	query   string
	stmt    *sql.Stmt
	users   int  // queries starting on stmt now
	evicted bool // out of the cache: close when users drops to 0
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, stmts: map[string]*list.Element{}, preparing: map[string]bool{}}
}

// get returns the cached statement of q, or nil. The caller must release a
// statement it got once its query has started.
func (c *stmtCache) get(q string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.stmts[q]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	cs := el.Value.(*cachedStmt)
	cs.users++
	return cs
}

// acquire is get, preparing the statement on the pool if needed.
func (c *stmtCache) acquire(ctx context.Context, q string) (*cachedStmt, error) {
	if cs := c.get(q); cs != nil {
		return cs, nil
	}
	// Prepared outside the lock: preparing takes a connection and a round
	// trip, and other queries need not wait for it.
	st, err := c.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.addLocked(q, st)
	cs.users++
	return cs, nil
}

// prepareLater prepares q in the background, for the transactions to come.
func (c *stmtCache) prepareLater(q string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.preparing[q] || c.stmts[q] != nil || len(c.preparing) >= maxBackgroundPrepares {
		return
	}
	c.preparing[q] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := c.pool.PrepareContext(ctx, q)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.preparing, q)
		switch {
		case err != nil: // the query runs unprepared; its error is reported there
		case c.closed:
			st.Close()
		default:
			c.addLocked(q, st)
		}
	}()
}

// addLocked caches st as the statement of q and returns the cache entry:
// the one already there if another query prepared q meanwhile (st is then
// closed), or none if the cache is closed (st is then used once and
// closed by its last user).
func (c *stmtCache) addLocked(q string, st *sql.Stmt) *cachedStmt {
	if el, ok := c.stmts[q]; ok {
		st.Close()
		c.lru.MoveToFront(el)
		return el.Value.(*cachedStmt)
	}
	cs := &cachedStmt{query: q, stmt: st}
	if c.closed {
		cs.evicted = true
		return cs
	}
	c.stmts[q] = c.lru.PushFront(cs)
	for c.lru.Len() > maxCachedStmts {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.stmts, old.query)
		old.evicted = true
		if old.users == 0 {
			old.stmt.Close()
		}
	}
	return cs
}

func (c *stmtCache) release(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.users--
	if cs.evicted && cs.users == 0 {
		cs.stmt.Close()
	}
}

// cached reports how many statements are cached.
func (c *stmtCache) cached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// close closes the cached statements (DB.Close closes the pool).
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for el := c.lru.Front(); el != nil; el = el.Next() {
		cs := el.Value.(*cachedStmt)
		cs.evicted = true
		if cs.users == 0 {
			cs.stmt.Close()
		}
	}
	c.lru.Init()
	clear(c.stmts)
}

// reader runs queries outside transactions on the cache's pool. It is a
// queryer.
type reader struct{ *stmtCache }

func (r reader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	cs, err := r.acquire(ctx, q)
	if err != nil {
		return nil, err
	}
	defer r.release(cs)
	return cs.stmt.QueryContext(ctx, args...)
}

func (r reader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	cs, err := r.acquire(ctx, q)
	if err != nil {
		// sql.Row cannot be built with an error from outside: run the
		// query unprepared, which reports the same error.
		return r.pool.QueryRowContext(ctx, q, args...)
	}
	defer r.release(cs)
	return cs.stmt.QueryRowContext(ctx, args...)
}

// ExecContext runs q unprepared: the reader pool serves reads (on SQLite
// its connections are query_only), so nothing frequent comes here.
func (r reader) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.pool.ExecContext(ctx, q, args...)
}

// txQueryer runs a transaction's queries through the writer pool's cache.
// It is a queryer. One statement per text serves the whole transaction:
// a transaction never has the rows of two queries open at once (lib/pq
// cannot), so no statement is run again while its rows are read.
type txQueryer struct {
	tx    *sql.Tx
	cache *stmtCache

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // bound to tx, closed when it ends
}

// stmt returns q's statement bound to the transaction, or nil to run q
// unprepared.
func (t *txQueryer) stmt(ctx context.Context, q string) *sql.Stmt {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.stmts[q]; ok {
		return st
	}
	cs := t.cache.get(q)
	if cs == nil {
		t.cache.prepareLater(q)
		return nil
	}
	defer t.cache.release(cs)
	st := t.tx.StmtContext(ctx, cs.stmt)
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st
}

func (t *txQueryer) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *txQueryer) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// ExecContext runs a write through the cache too. Query files pass writes
// of a fixed text here (tx.q), the roomserver's per-event writes above all
// (on SQLite under the send benchmark, re-preparing the event_txns INSERT
// was ~40% of its time). Writes whose text varies (savepoint names, lists
// of rows) go to tx.tx instead, so that they do not push the frequent
// statements out of the cache.
func (t *txQueryer) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}
