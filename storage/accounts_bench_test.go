package storage_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// BenchmarkAccounts measures the storage API end to end on each test
// database: CreateAccount is one committed transaction, GetAccount one
// point read (from parallel goroutines).
func BenchmarkAccounts(b *testing.B) {
	ctx := context.Background()
	for _, d := range storagetest.Dialects() {
		b.Run(string(d)+"/create", func(b *testing.B) {
			db := storagetest.Open(b, d)
			n := 0
			for b.Loop() {
				n++
				if err := db.CreateAccount(ctx, fmt.Sprintf("user%d", n), "hash", false); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/get-parallel", func(b *testing.B) {
			db := storagetest.Open(b, d)
			const users = 1000
			err := db.WithTx(ctx, func(tx *storage.Tx) error {
				for i := range users {
					if err := tx.CreateAccount(ctx, fmt.Sprintf("user%d", i), "hash", false); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.GetAccount(ctx, fmt.Sprintf("user%d", next.Add(1)%users)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
