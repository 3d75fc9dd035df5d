package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A burst is handed over in batches, in order; a failed batch comes back
// whole, and nothing is delivered twice after it succeeded.
func TestConsumeBatches(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			b := tg.open(t)
			ensure(t, b, "events", "events.>")
			const n = 300
			var data []string
			for i := range n {
				data = append(data, fmt.Sprint(i))
			}
			publish(t, b, "events.a", data...)

			var mu sync.Mutex
			var got []string
			var sizes []int
			failed := false
			done := make(chan struct{})
			c, err := b.ConsumeBatches(context.Background(), ConsumerConfig{Stream: "events", Durable: "batcher", Backoff: 20 * time.Millisecond}, 64,
				func(_ context.Context, msgs []*Message) error {
					mu.Lock()
					defer mu.Unlock()
					if !failed {
						failed = true
						return errors.New("the first batch fails once")
					}
					sizes = append(sizes, len(msgs))
					for _, m := range msgs {
						got = append(got, string(m.Data))
					}
					if len(got) == n {
						close(done)
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				mu.Lock()
				t.Fatalf("got %d of %d messages", len(got), n)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, d := range got {
				if d != data[i] {
					t.Fatalf("message %d is %q, want %q", i, d, data[i])
				}
			}
			big := false
			for _, s := range sizes {
				if s > 64 {
					t.Fatalf("a batch of %d, over the maximum", s)
				}
				big = big || s > 1
			}
			if !big {
				t.Errorf("every batch held one message: %v", sizes)
			}
			t.Logf("batch sizes: %v", sizes)
		})
	}
}
