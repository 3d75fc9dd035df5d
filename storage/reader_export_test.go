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

// CachedStmts is how many statements of db are cached.
func (db *DB) CachedStmts() int { return db.read.cached() }

// IsCached reports whether the statement of q is cached.
func (db *DB) IsCached(q string) bool {
	db.read.mu.Lock()
	defer db.read.mu.Unlock()
	_, ok := db.read.stmts[q]
	return ok
}

// MaxCachedStmts is the cache's bound.
const MaxCachedStmts = maxCachedStmts
