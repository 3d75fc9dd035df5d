package storage

import "context"

// CachedQueryInt runs a one-integer query through the statement cache.
func (db *DB) CachedQueryInt(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}

// CachedQueryInts runs a query of integers through the statement cache.
func (db *DB) CachedQueryInts(ctx context.Context, q string, args ...any) ([]int64, error) {
	return queryInt64s(ctx, db.read, q, args...)
}

// CachedStmts is how many statements of db are cached for reads outside
// transactions.
func (db *DB) CachedStmts() int { return db.read.cached() }

// CachedWriterStmts is how many statements of db are cached for
// transactions.
func (db *DB) CachedWriterStmts() int { return db.writeStmts.cached() }

// IsCached reports whether the statement of q is cached for reads outside
// transactions (writer false) or in them (writer true).
func (db *DB) IsCached(q string, writer bool) bool {
	c := db.read.stmtCache
	if writer {
		c = db.writeStmts
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.stmts[q]
	return ok
}

// CachedQueryInts runs a query of integers in tx, through the statement
// cache.
func (tx *Tx) CachedQueryInts(ctx context.Context, q string, args ...any) ([]int64, error) {
	return queryInt64s(ctx, tx.q, q, args...)
}

// MaxCachedStmts is the cache's bound.
const MaxCachedStmts = maxCachedStmts

// CachedExec runs a write in tx through the statement cache.
func (tx *Tx) CachedExec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := tx.q.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
