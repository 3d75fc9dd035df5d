package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
		if !db.IsCached(hot) {
			t.Error("a statement used every 50 queries was evicted")
		}
		if db.IsCached(`SELECT 0 + $1`) {
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
