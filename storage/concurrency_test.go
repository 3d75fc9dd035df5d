package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// TestConcurrentWriters: many goroutines write through two DB handles on
// one database (two handles stand in for two processes: on SQLite they
// contend for the file's write lock, not just for the writer connection),
// while readers read. No error, "database is locked" above all, may reach
// a caller, and every write must be there afterwards.
func TestConcurrentWriters(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dsn := storagetest.DSN(t, d)
			var handles [2]*storage.DB
			for i := range handles {
				db, err := storage.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				handles[i] = db
			}

			const writers, txs, perTx = 12, 20, 2
			var (
				wg     sync.WaitGroup
				failed atomic.Int32
				stop   = make(chan struct{})
			)
			report := func(err error) {
				if failed.Add(1) <= 5 { // the first few are enough to diagnose
					t.Error(err)
				}
			}
			for w := range writers {
				db := handles[w%2]
				wg.Go(func() {
					for n := range txs {
						err := db.WithTx(ctx, func(tx *storage.Tx) error {
							for k := range perTx {
								if err := tx.CreateAccount(ctx, fmt.Sprintf("w%d-%d-%d", w, n, k), "", false); err != nil {
									return err
								}
							}
							return nil
						})
						if err != nil {
							report(err)
						}
					}
				})
			}
			var readers sync.WaitGroup
			var reads atomic.Int64
			for r := range 4 {
				db := handles[r%2]
				readers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						_, err := db.GetAccount(ctx, fmt.Sprintf("w%d-0-0", r))
						if err != nil && !errors.Is(err, storage.ErrNotFound) {
							report(err)
						}
						reads.Add(1)
					}
				})
			}
			wg.Wait()
			close(stop)
			readers.Wait()

			var n int
			err := handles[0].WithTx(ctx, func(tx *storage.Tx) error {
				return tx.QueryValue(ctx, &n, `SELECT COUNT(*) FROM accounts`)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := writers * txs * perTx; n != want {
				t.Errorf("%d accounts, want %d", n, want)
			}
			t.Logf("%d reads ran alongside the writes", reads.Load())
		})
	}
}
