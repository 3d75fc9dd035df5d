package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Tx is a transaction in progress, handed to the function given to WithTx.
// Its query methods (one file per table, e.g. accounts.go) run inside the
// transaction. A Tx must not be used after that function returns.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
	// q runs the transaction's reads through cached prepared statements
	// (reader.go): query files pass tx.q where they read.
	q *txQueryer
	// revoked lists the users whose access tokens the transaction revoked
	// (revocations.go), announced once it commits.
	revoked []string
	// accountData lists the account data the transaction wrote, announced
	// once it commits (notices.go).
	accountData []AccountDataChange
	// stream is the stream counter as the transaction holds it
	// (NextStreamPos), savedStream what it was at each open savepoint.
	stream      streamCounter
	savedStream map[string][]streamCounter
}

// queryer is what a query needs; *sql.DB and *sql.Tx both provide it, so a
// read is written once and serves both DB and Tx methods.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txAttempts bounds how often WithTx runs a transaction that keeps meeting
// retryable errors; txBackoff is the first pause between attempts, doubled
// each time (10, 20, 40, 80 ms, with jitter).
const (
	txAttempts = 5
	txBackoff  = 10 * time.Millisecond
)

// WithTx runs fn in a transaction. It commits if fn returns nil and rolls
// back if fn returns an error or panics (the panic then continues).
//
// If the transaction fails because SQLite stayed locked past its busy
// timeout or PostgreSQL reported a serialization failure or deadlock, the
// whole transaction, fn included, runs again, up to 5 times in all. fn
// must therefore have no effects outside the transaction, and must wrap
// errors from Tx methods with %w so that they are recognised.
//
// fn must not call WithTx or a writing DB method: on SQLite the outer
// transaction holds the only writer connection, so the inner call would
// wait until its context ends. Reading DB methods are fine but do not see
// the transaction's uncommitted writes; use the Tx's methods for that.
func (db *DB) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	pause := txBackoff
	for attempt := 1; ; attempt++ {
		err := db.runTx(ctx, fn)
		if err == nil || !db.dialect.retryable(err) {
			return err
		}
		if attempt == txAttempts {
			return fmt.Errorf("transaction failed %d times, giving up: %w", attempt, err)
		}
		jittered := pause/2 + rand.N(pause) // spread out retries that collided
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(jittered):
		}
		pause *= 2
	}
}

// runTx is one attempt of WithTx.
func (db *DB) runTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	finished := false
	defer func() {
		// Reached unfinished only when fn panicked or called
		// runtime.Goexit (t.FailNow in a test): roll back so the writer
		// connection is free again, and let the panic go on.
		if !finished {
			sqlTx.Rollback()
		}
	}()
	tx := &Tx{tx: sqlTx, dialect: db.dialect, q: &txQueryer{tx: sqlTx, cache: db.writeStmts}}
	err = fn(tx)
	finished = true
	if err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
	if err := tx.saveStreamPos(ctx); err != nil {
		sqlTx.Rollback()
		return err
	}
	err = sqlTx.Commit()
	// Even after a failed commit: it may have taken effect.
	db.revocations.tell(tx.revoked)
	db.accountData.tell(tx.accountData)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
