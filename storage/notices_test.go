package storage_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// Account data written in a transaction is announced once per key after
// its commit, before WithTx returns; a rolled-back write is not.
func TestAccountDataNotices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		var (
			mu  sync.Mutex
			got []storage.AccountDataChange
		)
		db.OnAccountDataChanged(func(c storage.AccountDataChange) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		})
		err := db.WithTx(ctx, func(tx *storage.Tx) error {
			for _, content := range []string{`{"a":1}`, `{"a":2}`} {
				if _, err := tx.SetAccountData(ctx, "@u:x", "", "m.push_rules", []byte(content)); err != nil {
					return err
				}
			}
			_, err := tx.SetAccountData(ctx, "@u:x", "!r:x", "m.tag", []byte(`{}`))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.AccountDataChange{{UserID: "@u:x", Type: "m.push_rules"}, {UserID: "@u:x", RoomID: "!r:x", Type: "m.tag"}}
		mu.Lock()
		if !slices.Equal(got, want) {
			t.Errorf("notices %+v, want %+v", got, want)
		}
		got = nil
		mu.Unlock()
		_ = db.WithTx(ctx, func(tx *storage.Tx) error {
			if _, err := tx.SetAccountData(ctx, "@u:x", "", "m.push_rules", []byte(`{}`)); err != nil {
				return err
			}
			return errors.New("rolled back")
		})
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 0 {
			t.Errorf("a rolled-back write was announced: %+v", got)
		}
	})
}
