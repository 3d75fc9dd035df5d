//go:build mattn

package storage_test

// github.com/mattn/go-sqlite3 needs cgo and a C compiler, and is not what
// Myelin uses, so it joins the driver benchmarks only with -tags mattn.

import (
	"net/url"

	_ "github.com/mattn/go-sqlite3"
)

func init() {
	benchDrivers = append(benchDrivers, benchDriver{
		name:   "mattn",
		driver: "sqlite3",
		dsn: func(path, synchronous string, reader bool) string {
			q := url.Values{}
			q.Set("_busy_timeout", "5000")
			q.Set("_foreign_keys", "1")
			q.Set("_synchronous", synchronous)
			q.Set("_txlock", "immediate")
			if reader {
				q.Set("_query_only", "1")
			} else {
				q.Set("_journal_mode", "WAL")
			}
			return "file:" + path + "?" + q.Encode()
		},
	})
}
