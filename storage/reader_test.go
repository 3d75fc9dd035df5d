package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

func TestStatementCache(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		// The same text many times, concurrently: one cached statement.
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				n, err := db.CachedQueryInt(ctx, `SELECT $1 + 1`, int64(i))
				if err != nil || n != int64(i)+1 {
					t.Errorf("query %d = %d, %v", i, n, err)
				}
			})
		}
		wg.Wait()
		if got := db.CachedStmts(); got != 1 {
			t.Errorf("%d statements cached for one text", got)
		}
		// More texts than the cache holds still run, and the cache stays
		// bounded.
		for i := range 600 {
			n, err := db.CachedQueryInt(ctx, fmt.Sprintf(`SELECT %d + $1`, i), int64(1))
			if err != nil || n != int64(i)+1 {
				t.Fatalf("query %d = %d, %v", i, n, err)
			}
		}
		if got := db.CachedStmts(); got > 512 || got != storage.MaxCachedStmts {
			t.Errorf("%d statements cached, over the bound", got)
		}
		// An error comes back as an error, cached or not.
		if _, err := db.CachedQueryInt(ctx, `SELECT nope FROM nowhere`); err == nil {
			t.Error("a bad query succeeded")
		}
		if _, err := db.CachedQueryInts(ctx, `SELECT nope FROM nowhere`); err == nil {
			t.Error("a bad query succeeded")
		}
	})
}

// TestStatementCacheEviction: the statements used least recently leave the
// cache first, and evicting statements while other queries run on them
// (rows still open) loses no result.
func TestStatementCacheEviction(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const hot = `SELECT $1 * 2`
		for i := range storage.MaxCachedStmts * 2 {
			if i%50 == 0 {
				if n, err := db.CachedQueryInt(ctx, hot, int64(i)); err != nil || n != int64(i)*2 {
					t.Fatalf("hot query = %d, %v", n, err)
				}
			}
			if _, err := db.CachedQueryInt(ctx, fmt.Sprintf(`SELECT %d + $1`, i), int64(1)); err != nil {
				t.Fatal(err)
			}
		}
		if !db.IsCached(hot, false) {
			t.Error("a statement used every 50 queries was evicted")
		}
		if db.IsCached(`SELECT 0 + $1`, false) {
			t.Error("the statement used least recently is still cached")
		}

		// Many texts from several goroutines at once: statements are
		// evicted while others still read rows from them.
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 400 {
					k := (g*131 + i*7) % (storage.MaxCachedStmts + 200)
					q := fmt.Sprintf(`SELECT %d + $1 UNION ALL SELECT %d + $1 * 2`, k, k)
					got, err := db.CachedQueryInts(ctx, q, int64(i))
					if err != nil || len(got) != 2 || got[0] != int64(k+i) || got[1] != int64(k+2*i) {
						t.Errorf("%s with %d: %v, %v", q, i, got, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := db.CachedStmts(); got > storage.MaxCachedStmts {
			t.Errorf("%d statements cached, over the bound", got)
		}
	})
}

func TestSyncPositions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		p, err := db.SyncPositionsFor(ctx, "@a:x")
		if err != nil || p != (storage.SyncPositions{}) {
			t.Fatalf("empty database: %+v, %v", p, err)
		}
		var adPos, rPos int64
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			var err error
			if adPos, err = tx.SetAccountData(ctx, "@a:x", "", "t", []byte(`{}`)); err != nil {
				return err
			}
			if _, err = tx.SetAccountData(ctx, "@b:x", "", "t", []byte(`{}`)); err != nil {
				return err
			}
			rPos, err = tx.PutReceipt(ctx, storage.Receipt{RoomID: "!r:x", Type: "m.read", UserID: "@b:x", EventID: "$e", EventPos: 1})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err = db.SyncPositionsFor(ctx, "@a:x")
		if err != nil {
			t.Fatal(err)
		}
		if p.Stream != rPos || p.AccountData != adPos || p.Receipts != rPos || p.Presence != 0 || p.Membership != 0 {
			t.Errorf("positions %+v (account data at %d, receipt at %d)", p, adPos, rPos)
		}
	})
}

// TestStatementCacheInTransactions: a transaction's reads run unprepared
// the first time a text is seen, which prepares it in the background, and
// through the cached statement afterwards; results are the same either
// way, and the cache stays bounded.
func TestStatementCacheInTransactions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const q = `SELECT $1 + 5 UNION ALL SELECT $1 + 6`
		inTx := func(q string, arg int64) []int64 {
			t.Helper()
			var got []int64
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				// Twice in one transaction: the second run reuses what
				// the first one got.
				for range 2 {
					var err error
					if got, err = tx.CachedQueryInts(ctx, q, arg); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return got
		}
		if got := inTx(q, 1); len(got) != 2 || got[0] != 6 || got[1] != 7 {
			t.Fatalf("first run: %v", got)
		}
		waitCached(t, db, q)
		if got := inTx(q, 10); len(got) != 2 || got[0] != 15 || got[1] != 16 {
			t.Errorf("through the cached statement: %v", got)
		}

		// An error in a transaction is the query's error, prepared or not.
		for range 2 {
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				_, err := tx.CachedQueryInts(ctx, `SELECT nope FROM nowhere`)
				return err
			})
			if err == nil {
				t.Error("a bad query succeeded in a transaction")
			}
		}

		// More texts than the cache holds.
		for i := range storage.MaxCachedStmts + 100 {
			text := fmt.Sprintf(`SELECT %d + $1`, i)
			if got := inTx(text, 1); len(got) != 1 || got[0] != int64(i)+1 {
				t.Fatalf("%s: %v", text, got)
			}
		}
		waitCached(t, db, fmt.Sprintf(`SELECT %d + $1`, storage.MaxCachedStmts+99))
		if got := db.CachedWriterStmts(); got > storage.MaxCachedStmts || got == 0 {
			t.Errorf("%d statements cached, over the bound", got)
		}
	})
}

// TestStatementCacheWrites: a transaction's writes of fixed text run
// unprepared the first time and through the cached statement afterwards,
// with the same effect, and are undone with their transaction or savepoint
// either way.
func TestStatementCacheWrites(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const q = `UPDATE roomserver_published SET pos = $1 WHERE id = 1 AND pos < $1`
		set := func(tx *storage.Tx, pos int64) {
			t.Helper()
			if n, err := tx.CachedExec(ctx, q, pos); err != nil || n != 1 {
				t.Fatalf("set %d: %d rows, %v", pos, n, err)
			}
		}
		published := func() int64 {
			t.Helper()
			pos, err := db.PublishedPos(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return pos
		}
		run := func(pos int64) {
			t.Helper()
			if err := db.WithTx(ctx, func(tx *storage.Tx) error { set(tx, pos); return nil }); err != nil {
				t.Fatal(err)
			}
			if got := published(); got != pos {
				t.Fatalf("published %d, want %d", got, pos)
			}
		}
		run(1) // unprepared; prepared in the background
		deadline := time.Now().Add(10 * time.Second)
		for pos := int64(2); !db.IsCached(q, true); pos++ {
			if time.Now().After(deadline) {
				t.Fatal("the write is not cached after 10 s")
			}
			run(pos)
			time.Sleep(5 * time.Millisecond)
		}
		base := published()
		run(base + 1) // through the cached statement

		// Undone with a savepoint, kept after it, undone with the
		// transaction.
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			if err := tx.Savepoint(ctx, "job"); err != nil {
				return err
			}
			set(tx, base+10)
			if err := tx.RollbackTo(ctx, "job"); err != nil {
				return err
			}
			if err := tx.ReleaseSavepoint(ctx, "job"); err != nil {
				return err
			}
			set(tx, base+2)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := published(); got != base+2 {
			t.Errorf("after a savepoint rolled back: published %d, want %d", got, base+2)
		}
		errUndo := errors.New("undo")
		err = db.WithTx(ctx, func(tx *storage.Tx) error { set(tx, base+20); return errUndo })
		if !errors.Is(err, errUndo) {
			t.Fatal(err)
		}
		if got := published(); got != base+2 {
			t.Errorf("after a rollback: published %d, want %d", got, base+2)
		}
		// A failing write reports its error through the cache too.
		err = db.WithTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.CachedExec(ctx, `UPDATE nowhere SET x = $1`, 1)
			return err
		})
		if err == nil {
			t.Error("a bad write succeeded")
		}
	})
}

// waitCached runs q once in a transaction so that it is prepared in the
// background, and waits until it is cached.
func waitCached(t *testing.T, db *storage.DB, q string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !db.IsCached(q, true) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not cached after 10 s", q)
		}
		if err := db.WithTx(context.Background(), func(tx *storage.Tx) error {
			_, err := tx.CachedQueryInts(context.Background(), q, int64(1))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStatementCacheClose: closing the database while statements are
// prepared in the background is clean.
func TestStatementCacheClose(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db, err := storage.Open(ctx, storagetest.DSN(t, d))
			if err != nil {
				t.Fatal(err)
			}
			err = db.WithTx(ctx, func(tx *storage.Tx) error {
				for i := range 20 {
					if _, err := tx.CachedQueryInts(ctx, fmt.Sprintf(`SELECT %d + $1`, i), int64(1)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := db.CachedQueryInt(ctx, `SELECT 1`); err == nil {
				t.Error("a query on a closed database succeeded")
			}
		})
	}
}
