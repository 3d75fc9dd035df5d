package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// BenchmarkRecordPush10000 records one message's notifications for the
// 10,000 local members of a room (everyone on the default rules is
// notified of a message), the write the notifier makes per event, in one
// transaction with the receipts check, the pushers lookup and the progress.
func BenchmarkRecordPush10000(b *testing.B) {
	for _, d := range storagetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := storagetest.Open(b, d)
			ctx := context.Background()
			notify := make([]storage.PushNotify, 10000)
			for i := range notify {
				notify[i] = storage.PushNotify{UserID: fmt.Sprintf("@user%d:example.org", i), Actions: []byte(`["notify"]`), Tweaks: []byte(`{}`)}
			}
			pos := int64(0)
			b.ResetTimer()
			for b.Loop() {
				pos++
				if _, err := recordPush(ctx, db, storage.PushEvent{RoomID: "!big:example.org", EventID: fmt.Sprintf("$e%d", pos),
					EventPos: pos, ThreadID: storage.MainThread, TS: 1, Notify: notify}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
