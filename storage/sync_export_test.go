package storage

import "context"

// CachedQueryInt runs a one-integer query through the statement cache.
func (db *DB) CachedQueryInt(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := db.cachedRead().QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}

// CachedStmts is how many statements of db are cached.
func (db *DB) CachedStmts() int {
	stmtMu.Lock()
	defer stmtMu.Unlock()
	return stmtCount[db.read]
}
