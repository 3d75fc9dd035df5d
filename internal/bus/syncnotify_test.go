package bus

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestNotifySyncRoundTrip(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			got := make(chan *nats.Msg, 1)
			sub, err := b.Conn().ChanSubscribe(b.Subject(SyncNotifySubject), got)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			if err := b.Conn().Flush(); err != nil {
				t.Fatal(err)
			}
			want := SyncNotification{Pos: 42, RoomID: "!r:x", UserIDs: []string{"@a:x"}, Kind: SyncKindReceipt}
			if err := NotifySync(context.Background(), b, want); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				var n SyncNotification
				if err := json.Unmarshal(m.Data, &n); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(n, want) {
					t.Fatalf("got %+v, want %+v", n, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no notification delivered")
			}
		})
	}
}

func TestNotifySyncCancelledContext(t *testing.T) {
	b := targets(t)[0].open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NotifySync(ctx, b, SyncNotification{Pos: 1}); err == nil {
		t.Fatal("NotifySync with a cancelled context succeeded")
	}
}
