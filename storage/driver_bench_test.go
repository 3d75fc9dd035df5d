package storage_test

// Benchmarks that chose the SQLite driver (see doc.go "SQLite driver").
// They use the raw database/sql drivers with the settings Open uses, so the
// two drivers are compared on equal terms. modernc.org/sqlite always runs;
// github.com/mattn/go-sqlite3 (cgo) joins when built with -tags mattn:
//
//	go test -run '^$' -bench SQLite -benchtime 2s ./storage/
//	CGO_ENABLED=1 go test -tags mattn -run '^$' -bench SQLite -benchtime 2s ./storage/

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// benchDriver is one SQLite driver under test.
type benchDriver struct {
	name   string // sub-benchmark name
	driver string // database/sql driver name
	// dsn builds a DSN for path with the given synchronous level; readers
	// get query_only.
	dsn func(path, synchronous string, reader bool) string
}

var benchDrivers = []benchDriver{{
	name:   "modernc",
	driver: "sqlite",
	dsn: func(path, synchronous string, reader bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous("+synchronous+")")
		q.Set("_txlock", "immediate")
		if reader {
			q.Add("_pragma", "query_only(1)")
		} else {
			q.Add("_pragma", "journal_mode(WAL)")
		}
		return "file:" + path + "?" + q.Encode()
	},
}}

// openBench opens a writer handle (one connection) and a reader pool on a
// fresh file, with one table t(id INTEGER PRIMARY KEY, v TEXT).
func openBench(b *testing.B, d benchDriver, synchronous string, readers int) (w, r *sql.DB) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	w, err := sql.Open(d.driver, d.dsn(path, synchronous, false))
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	r, err = sql.Open(d.driver, d.dsn(path, synchronous, true))
	if err != nil {
		b.Fatal(err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	b.Cleanup(func() { r.Close(); w.Close() })
	return w, r
}

// insertTx inserts n rows with ids from *next in one transaction.
func insertTx(ctx context.Context, db *sql.DB, next *int64, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	for range n {
		id := atomic.AddInt64(next, 1)
		if _, err := st.ExecContext(ctx, id, "value of a typical row, about sixty bytes long......"); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkSQLiteInsertTx: one op is one committed transaction of rows
// inserts, under synchronous FULL (fsync per commit) and NORMAL.
func BenchmarkSQLiteInsertTx(b *testing.B) {
	for _, d := range benchDrivers {
		for _, sync := range []string{"FULL", "NORMAL"} {
			for _, rows := range []int{1, 100} {
				b.Run(fmt.Sprintf("%s/sync=%s/rows=%d", d.name, sync, rows), func(b *testing.B) {
					w, _ := openBench(b, d, sync, 1)
					var next int64
					ctx := context.Background()
					for b.Loop() {
						if err := insertTx(ctx, w, &next, rows); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		}
	}
}

const benchRows = 10000

func fill(b *testing.B, w *sql.DB) *int64 {
	b.Helper()
	var next int64
	for range benchRows / 1000 {
		if err := insertTx(context.Background(), w, &next, 1000); err != nil {
			b.Fatal(err)
		}
	}
	return &next
}

// BenchmarkSQLitePointRead: primary-key lookups from parallel goroutines
// through the reader pool, no writes going on.
func BenchmarkSQLitePointRead(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			w, r := openBench(b, d, "FULL", 4)
			fill(b, w)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var v string
				for pb.Next() {
					if err := r.QueryRow(`SELECT v FROM t WHERE id = ?`, 1+rand.IntN(benchRows)).Scan(&v); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSQLiteReadDuringWrites: the point reads above while one
// goroutine commits single-row transactions as fast as it can. Reports
// the writer's rate too: WAL should let both proceed.
func BenchmarkSQLiteReadDuringWrites(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			w, r := openBench(b, d, "FULL", 4)
			next := fill(b, w)
			ctx, cancel := context.WithCancel(context.Background())
			var writes atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for ctx.Err() == nil {
					if err := insertTx(ctx, w, next, 1); err != nil {
						if ctx.Err() == nil {
							b.Error(err)
						}
						return
					}
					writes.Add(1)
				}
			})
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var v string
				for pb.Next() {
					if err := r.QueryRow(`SELECT v FROM t WHERE id = ?`, 1+rand.IntN(benchRows)).Scan(&v); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			cancel()
			wg.Wait()
			b.ReportMetric(float64(writes.Load())/elapsed.Seconds(), "writes/s")
		})
	}
}

// BenchmarkSQLiteConcurrentWriters compares the two ways to let many
// goroutines write: all through one connection (database/sql queues them),
// or a pool of 8 connections that contend for SQLite's write lock with
// BEGIN IMMEDIATE and busy_timeout. One op is one single-row transaction.
func BenchmarkSQLiteConcurrentWriters(b *testing.B) {
	for _, d := range benchDrivers {
		for _, conns := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/writer-conns=%d", d.name, conns), func(b *testing.B) {
				w, _ := openBench(b, d, "FULL", 1)
				w.SetMaxOpenConns(conns)
				var next int64
				var failed atomic.Int64
				b.SetParallelism(4) // 4×GOMAXPROCS goroutines
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := insertTx(context.Background(), w, &next, 1); err != nil {
							failed.Add(1)
						}
					}
				})
				b.ReportMetric(float64(failed.Load()), "errors")
			})
		}
	}
}
