package storage

// The reader: how every read outside a transaction runs.
//
// Preparing a statement costs more than running it for the small queries
// the server makes (on SQLite, measured: three quarters of a query's time
// went to parsing and planning; on /sync, re-preparing the access token
// lookup alone was ~15% of the CPU), and database/sql prepares a statement
// anew for every QueryContext with text. The reader keeps one *sql.Stmt per
// query text on the reader pool; database/sql prepares it once per
// connection and reuses it. Query files need not choose: every DB read
// method goes through db.read, which is a reader.
//
// The cache is bounded (queries with an IN list have a text per list
// length, so the set of texts is open-ended) and evicts the statement used
// least recently. A statement is closed only once no query is starting on
// it; closing it while rows from it are open is safe (database/sql finishes
// the close when they are closed).

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statements kept per database. On PostgreSQL
// each is prepared on every pool connection that runs it, so this also
// bounds the server-side prepared statements per connection.
const maxCachedStmts = 512

// reader runs queries on pool through cached prepared statements. It is a
// queryer.
type reader struct {
	pool *sql.DB

	mu    sync.Mutex
	stmts map[string]*list.Element // query text → element of lru
	lru   list.List                // of *cachedStmt, most recently used first
}

type cachedStmt struct {
	query   string
	stmt    *sql.Stmt
	users   int  // queries starting on stmt now
	evicted bool // out of the cache: close when users drops to 0
}

func newReader(pool *sql.DB) *reader {
	return &reader{pool: pool, stmts: map[string]*list.Element{}}
}

// acquire returns the cached statement of q, preparing it if needed. The
// caller must release it once its query has started.
func (r *reader) acquire(ctx context.Context, q string) (*cachedStmt, error) {
	r.mu.Lock()
	if el, ok := r.stmts[q]; ok {
		r.lru.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		cs.users++
		r.mu.Unlock()
		return cs, nil
	}
	r.mu.Unlock()

	// Prepared outside the lock: preparing takes a connection and a round
	// trip, and other queries need not wait for it.
	st, err := r.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.stmts[q]; ok { // prepared meanwhile by another query
		st.Close()
		r.lru.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		cs.users++
		return cs, nil
	}
	cs := &cachedStmt{query: q, stmt: st, users: 1}
	r.stmts[q] = r.lru.PushFront(cs)
	for r.lru.Len() > maxCachedStmts {
		old := r.lru.Remove(r.lru.Back()).(*cachedStmt)
		delete(r.stmts, old.query)
		old.evicted = true
		if old.users == 0 {
			old.stmt.Close()
		}
	}
	return cs, nil
}

func (r *reader) release(cs *cachedStmt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs.users--
	if cs.evicted && cs.users == 0 {
		cs.stmt.Close()
	}
}

func (r *reader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	cs, err := r.acquire(ctx, q)
	if err != nil {
		return nil, err
	}
	defer r.release(cs)
	return cs.stmt.QueryContext(ctx, args...)
}

func (r *reader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
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
func (r *reader) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.pool.ExecContext(ctx, q, args...)
}

// cached reports how many statements are cached.
func (r *reader) cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}

// closeStmts closes the cached statements (DB.Close closes the pool).
func (r *reader) closeStmts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for el := r.lru.Front(); el != nil; el = el.Next() {
		el.Value.(*cachedStmt).stmt.Close()
	}
	r.lru.Init()
	clear(r.stmts)
}
