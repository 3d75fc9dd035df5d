package storage

// Prepared statements for the read paths that run on every /sync.
//
// Preparing a statement costs more than running it for the small queries
// sync makes (on SQLite, measured: three quarters of a query's time went
// to parsing and planning), and database/sql prepares a statement anew for
// every QueryContext with text. cachedReader keeps one *sql.Stmt per query
// text on the reader pool; database/sql prepares it once per connection
// and reuses it.

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statements kept per database: queries with an
// IN list have a text per list length, so the set of texts is open-ended.
const maxCachedStmts = 512

type stmtCacheKey struct {
	db *sql.DB
	q  string
}

var (
	stmtMu    sync.Mutex
	stmtCache = map[stmtCacheKey]*sql.Stmt{}
	stmtCount = map[*sql.DB]int{}
)

// cachedReader is a queryer that runs reads through cached prepared
// statements of db.read.
type cachedReader struct{ db *sql.DB }

func (db *DB) cachedRead() cachedReader { return cachedReader{db.read} }

func (c cachedReader) stmt(ctx context.Context, q string) (*sql.Stmt, bool, error) {
	key := stmtCacheKey{c.db, q}
	stmtMu.Lock()
	st := stmtCache[key]
	stmtMu.Unlock()
	if st != nil {
		return st, true, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, false, err
	}
	stmtMu.Lock()
	defer stmtMu.Unlock()
	if old := stmtCache[key]; old != nil {
		st.Close()
		return old, true, nil
	}
	if stmtCount[c.db] >= maxCachedStmts {
		return st, false, nil // used once, then closed by the caller
	}
	stmtCache[key] = st
	stmtCount[c.db]++
	return st, true, nil
}

func (c cachedReader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, cached, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if !cached {
		// Closing a statement waits for its rows to be closed; rows keep
		// working meanwhile.
		defer st.Close()
	}
	return rows, err
}

func (c cachedReader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, cached, err := c.stmt(ctx, q)
	if err != nil {
		// sql.Row cannot be built with an error from outside: run the
		// query unprepared, which reports the same error.
		return c.db.QueryRowContext(ctx, q, args...)
	}
	if !cached {
		defer st.Close()
	}
	return st.QueryRowContext(ctx, args...)
}

func (c cachedReader) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.db.ExecContext(ctx, q, args...)
}
