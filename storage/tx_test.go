package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func mustNotExist(t *testing.T, db *storage.DB, localpart string) {
	t.Helper()
	if _, err := db.GetAccount(context.Background(), localpart); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount(%q) = %v, want ErrNotFound (the transaction should have rolled back)", localpart, err)
	}
}

func mustExist(t *testing.T, db *storage.DB, localpart string) {
	t.Helper()
	if _, err := db.GetAccount(context.Background(), localpart); err != nil {
		t.Errorf("GetAccount(%q) = %v, want the committed account", localpart, err)
	}
}

func TestWithTxCommit(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, lp := range []string{"alice", "bob"} {
				if err := tx.CreateAccount(ctx, lp, "hash", false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mustExist(t, db, "alice")
		mustExist(t, db, "bob")
	})
}

func TestWithTxRollbackOnError(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		errBoom := errors.New("boom")
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.CreateAccount(ctx, "carol", "hash", false); err != nil {
				return err
			}
			// The transaction sees its own write...
			if _, err := tx.GetAccount(ctx, "carol"); err != nil {
				return fmt.Errorf("own write not visible: %w", err)
			}
			// ...and nobody else does before it commits.
			mustNotExist(t, db, "carol")
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("WithTx = %v, want fn's error", err)
		}
		mustNotExist(t, db, "carol")
		// A failed statement (duplicate handled inside) and then an error.
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.CreateAccount(ctx, "dave", "", false); err != nil {
				return err
			}
			return tx.CreateAccount(ctx, "dave", "", false)
		})
		if !errors.Is(err, storage.ErrAccountExists) {
			t.Fatalf("WithTx = %v, want ErrAccountExists", err)
		}
		mustNotExist(t, db, "dave")
	})
}

func TestWithTxRollbackOnPanic(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		var recovered any
		func() {
			defer func() { recovered = recover() }()
			db.WithTx(ctx, func(tx *storage.Tx) error {
				if err := tx.CreateAccount(ctx, "erin", "", false); err != nil {
					t.Errorf("CreateAccount: %v", err)
				}
				panic("kaboom")
			})
		}()
		if recovered != "kaboom" {
			t.Fatalf("recovered %v, want the panic to reach the caller", recovered)
		}
		mustNotExist(t, db, "erin")
		// The writer is free again (on SQLite a leaked transaction would
		// hold the only writer connection and this would hang).
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := db.CreateAccount(ctx, "erin", "", false); err != nil {
			t.Fatalf("writing after the panic: %v", err)
		}
	})
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pq.Error{Code: "40001"}, true},
		{fmt.Errorf("wrapped: %w", &pq.Error{Code: "40P01"}), true},
		{&pq.Error{Code: "23505"}, false},
		{errors.New("database is locked"), false}, // text alone is not a driver error
		{context.Canceled, false},
	} {
		if got := storage.Retryable(storage.PostgreSQL, tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestWithTxRetries produces a real retryable failure on each database
// and checks that WithTx runs the transaction again and succeeds.
//
// SQLite: a second DB handle on the same file (as a second process would)
// holds the write lock past a shortened busy_timeout, then lets go.
// PostgreSQL: two transactions lock two rows in opposite orders; the
// server aborts one as a deadlock.
func TestWithTxRetries(t *testing.T) {
	defer storage.SetSQLiteBusyTimeout(50)()
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dsn := storagetest.DSN(t, d)
			ctx := context.Background()
			a, err := storage.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := storage.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if d == storage.SQLite {
				retrySQLiteBusy(t, a, b)
			} else {
				retryPostgresDeadlock(t, a)
			}
		})
	}
}

func retrySQLiteBusy(t *testing.T, a, b *storage.DB) {
	ctx := context.Background()
	// hold takes the write lock through a and keeps it until release closes.
	hold := func(localpart string, release chan struct{}) (done chan error) {
		locked, done := make(chan struct{}), make(chan error, 1)
		go func() {
			done <- a.WithTx(ctx, func(tx *storage.Tx) error {
				if err := tx.CreateAccount(ctx, localpart, "", false); err != nil {
					return err
				}
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		return done
	}

	// The lock is held for 4 busy timeouts: a single attempt would fail
	// (BEGIN IMMEDIATE gives up after 50 ms), so success means a retry.
	release := make(chan struct{})
	held := hold("holder", release)
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	start := time.Now()
	err := b.WithTx(ctx, func(tx *storage.Tx) error {
		return tx.CreateAccount(ctx, "waiter", "", false)
	})
	if err != nil {
		t.Fatalf("WithTx = %v, want success on a retry", err)
	}
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("WithTx succeeded after %v, before the lock was released", elapsed)
	}
	if err := <-held; err != nil {
		t.Errorf("holder: %v", err)
	}
	mustExist(t, b, "holder")
	mustExist(t, b, "waiter")

	// A lock that is not released in time: WithTx gives up after its
	// attempts with the busy error, and fn never ran.
	release = make(chan struct{})
	held = hold("holder2", release)
	ran := false
	err = b.WithTx(ctx, func(tx *storage.Tx) error {
		ran = true
		return tx.CreateAccount(ctx, "waiter2", "", false)
	})
	close(release)
	if err := <-held; err != nil {
		t.Errorf("holder: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "failed 5 times") || !storage.Retryable(storage.SQLite, err) {
		t.Errorf("WithTx = %v, want it to give up with the busy error", err)
	}
	if ran {
		t.Error("fn ran although the transaction never began")
	}
	mustNotExist(t, b, "waiter2")
}

func retryPostgresDeadlock(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	for _, lp := range []string{"row1", "row2"} {
		if err := db.CreateAccount(ctx, lp, "", false); err != nil {
			t.Fatal(err)
		}
	}
	// Both transactions lock their first row, wait for each other, then
	// lock the other's row: a deadlock on the first attempt only.
	var firstRound atomic.Int32
	bothLocked := make(chan struct{})
	var attempts atomic.Int32
	run := func(first, second string) error {
		return db.WithTx(ctx, func(tx *storage.Tx) error {
			attempts.Add(1)
			lock := func(lp string) error {
				_, err := tx.Exec(ctx, `UPDATE accounts SET is_admin = NOT is_admin WHERE localpart = $1`, lp)
				return err
			}
			if err := lock(first); err != nil {
				return err
			}
			if firstRound.Add(1) == 2 {
				close(bothLocked)
			}
			<-bothLocked
			return lock(second)
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run("row1", "row2") }()
	go func() { errs <- run("row2", "row1") }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("WithTx = %v, want the deadlocked transaction retried", err)
		}
	}
	if attempts.Load() < 3 {
		t.Errorf("%d attempts in all, want at least 3 (one retry)", attempts.Load())
	}
	// Each transaction flipped both rows once: back where they started.
	for _, lp := range []string{"row1", "row2"} {
		a, err := db.GetAccount(ctx, lp)
		if err != nil {
			t.Fatal(err)
		}
		if a.IsAdmin {
			t.Errorf("%s flipped an odd number of times: a retried transaction was applied twice or not at all", lp)
		}
	}
}

// Stream positions taken in one transaction count on in memory after the
// first: they are consecutive, a savepoint rolled back gives back those
// taken since (even the first, which wrote the counter's row), the counter
// holds the last one taken once committed, and a rolled-back transaction
// leaves it as it was.
func TestStreamPositionsOfATransaction(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		start, err := db.StreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var taken []int64
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			take := func() {
				p, err := tx.NextStreamPos(ctx)
				if err != nil {
					t.Fatal(err)
				}
				taken = append(taken, p)
			}
			// The first position is taken inside a savepoint rolled back,
			// then two in one kept, then one more in one rolled back.
			inSavepoint := func(n int, keep bool) {
				if err := tx.Savepoint(ctx, "sp"); err != nil {
					t.Fatal(err)
				}
				for range n {
					take()
				}
				if !keep {
					if err := tx.RollbackTo(ctx, "sp"); err != nil {
						t.Fatal(err)
					}
				}
				if err := tx.ReleaseSavepoint(ctx, "sp"); err != nil {
					t.Fatal(err)
				}
			}
			inSavepoint(1, false)
			inSavepoint(2, true)
			inSavepoint(1, false)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{start + 1, start + 1, start + 2, start + 3}; fmt.Sprint(taken) != fmt.Sprint(want) {
			t.Fatalf("positions taken %v, want %v", taken, want)
		}
		if got, _ := db.StreamPos(ctx); got != start+2 {
			t.Fatalf("counter %d after the commit, want %d", got, start+2)
		}
		// Rolled back: the counter stays.
		_ = db.WithTx(ctx, func(tx *storage.Tx) error {
			tx.NextStreamPos(ctx)
			tx.NextStreamPos(ctx)
			return errors.New("no")
		})
		if got, _ := db.StreamPos(ctx); got != start+2 {
			t.Fatalf("counter %d after a rollback, want %d", got, start+2)
		}
		// The next transaction goes on from there.
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			p, err := tx.NextStreamPos(ctx)
			if err == nil && p != start+3 {
				t.Errorf("next position %d, want %d", p, start+3)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
