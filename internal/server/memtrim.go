package server

// Giving memory back after a burst. Thousands of clients reconnecting at
// once (after a restart or a network cut) or one message waking thousands
// of long-polls make the heap grow for a moment. The Go runtime keeps what
// it grew to for reuse and hands it back to the operating system only
// slowly, after its next collection, which on a quiet server can be
// minutes away; meanwhile a small box is short of hundreds of megabytes
// the server no longer uses. So when the server goes quiet after
// allocating a lot, it collects and returns the free memory at once.
//
// Only then: in a busy server the memory is about to be reused, and
// returning it would cost page faults for nothing. The cost of a trim (a
// collection and the release) is paid while the server is idle, and trims
// are spaced so that they take at most about 5% of one CPU.

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

const (
	trimSample = 100 * time.Millisecond
	// trimAfterAllocating: a trim is considered once the program has
	// allocated this much since the last one.
	trimAfterAllocating = 16 << 20
	// trimQuietBytes: allocating less than this in a trimSample is quiet.
	trimQuietBytes = 128 << 10
	// trimQuietSamples: quiet for this many samples in a row.
	trimQuietSamples = 2
	// trimCostFactor spaces trims at least this many times their own
	// duration apart (5% of a CPU), and trimMinInterval at least this.
	trimCostFactor  = 20
	trimMinInterval = time.Second
)

// trimMemoryWhenIdle runs until ctx ends.
func trimMemoryWhenIdle(ctx context.Context, logger *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	tick := time.NewTicker(trimSample)
	defer tick.Stop()
	last := read()
	sinceTrim := uint64(0)
	quiet := 0
	var lastTrim time.Time
	var lastCost time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := read()
		delta := now - last
		last = now
		sinceTrim += delta
		if delta >= trimQuietBytes {
			quiet = 0
			continue
		}
		quiet++
		if quiet < trimQuietSamples || sinceTrim < trimAfterAllocating ||
			time.Since(lastTrim) < max(trimMinInterval, trimCostFactor*lastCost) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		lastTrim, lastCost = time.Now(), time.Since(start)
		logger.Debug("returned free memory to the operating system", "allocated_since_last", sinceTrim, "took", lastCost)
		sinceTrim = 0
		last = read()
	}
}

// One trimmer per process, however many servers it runs (tests run
// several): it watches the process's memory, not a server's.
var trimmer struct {
	sync.Mutex
	users int
	stop  context.CancelFunc
}

// startMemoryTrimmer starts the process's trimmer if it is not running;
// call the returned function when the server stops.
func startMemoryTrimmer(logger *slog.Logger) (release func()) {
	trimmer.Lock()
	defer trimmer.Unlock()
	if trimmer.users == 0 {
		ctx, stop := context.WithCancel(context.Background())
		trimmer.stop = stop
		go trimMemoryWhenIdle(ctx, logger)
	}
	trimmer.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			trimmer.Lock()
			defer trimmer.Unlock()
			if trimmer.users--; trimmer.users == 0 {
				trimmer.stop()
			}
		})
	}
}
