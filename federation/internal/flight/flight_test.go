package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoCollapsesConcurrentCalls(t *testing.T) {
	var g Group[string, int]
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, error) {
		runs.Add(1)
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	results := make([]int, 10)
	for i := range results {
		wg.Go(func() {
			v, err := g.Do(context.Background(), "k", fn)
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	// Let every caller join before the call finishes.
	for deadline := time.Now().Add(5 * time.Second); runs.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want 1", n)
	}
	for i, v := range results {
		if v != 42 {
			t.Fatalf("caller %d got %d", i, v)
		}
	}
	// Once finished, the next call runs fn again.
	v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 7, errors.New("e") })
	if v != 7 || err == nil || err.Error() != "e" {
		t.Fatalf("second call: %d, %v", v, err)
	}
}

func TestDoCallerGivesUp(t *testing.T) {
	var g Group[string, int]
	release := make(chan struct{})
	started := make(chan struct{})
	go g.Do(context.Background(), "k", func(ctx context.Context) (int, error) {
		close(started)
		<-release
		return 1, nil
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Do(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
	// A caller cancelling does not cancel the call's context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	fnDone := make(chan bool)
	_, err := g.Do(ctx2, "k2", func(ctx context.Context) (int, error) {
		cancel2()
		time.Sleep(10 * time.Millisecond)
		fnDone <- ctx.Err() == nil
		return 0, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("caller cancelled during the call: %v", err)
	}
	if !<-fnDone {
		t.Fatal("the call's context was cancelled with its first caller's")
	}
}
