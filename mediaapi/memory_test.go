package mediaapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// patternReader yields n bytes of a fixed pattern without allocating.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.left)
	for i := range b[:n] {
		b[i] = byte(i*7 + int(p.left))
	}
	p.left -= n
	return int(n), nil
}

// heapSampler records the largest HeapInuse seen while it runs.
func heapSampler() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// A 100 MB upload and download stream through the server: its heap (the
// whole test process's, server and client) grows by a few MB at most.
func TestLargeUploadIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MB")
	}
	s := servertest.Start(t, 1)[0]
	_, tok := s.RegisterUser(t, "alice")
	const size = 100_000_000

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapSampler()
	req, err := http.NewRequest(http.MethodPost, s.ClientURL+"/_matrix/media/v3/upload?filename=big.bin", &patternReader{left: size})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	status, raw := send(t, s, req)
	peak := stop()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if status != http.StatusOK {
		t.Fatalf("upload: %d %s", status, raw)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("100 MB upload: heap in use grew by at most %.1f MiB; %.1f MiB allocated in all", float64(growth)/(1<<20), float64(alloc)/(1<<20))
	if growth > 8<<20 {
		t.Errorf("the heap grew by %.1f MiB during a 100 MB upload, want at most 8", float64(growth)/(1<<20))
	}
	if alloc > 32<<20 {
		t.Errorf("%.1f MiB allocated during a 100 MB upload, want at most 32", float64(alloc)/(1<<20))
	}

	var out struct {
		ContentURI string `json:"content_uri"`
	}
	mustJSON(t, raw, &out)
	want := sha256.New()
	io.Copy(want, &patternReader{left: size})

	runtime.GC()
	runtime.ReadMemStats(&before)
	stop = heapSampler()
	greq, _ := http.NewRequest(http.MethodGet, s.ClientURL+"/_matrix/client/v1/media/download/"+mxcPath(out.ContentURI), nil)
	greq.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.Client.Do(greq)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	peak = stop()
	if err != nil || n != size || hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("download: %d bytes, %v, hash match %v", n, err, hex.EncodeToString(got.Sum(nil)) == hex.EncodeToString(want.Sum(nil)))
	}
	growth = int64(peak) - int64(before.HeapInuse)
	t.Logf("100 MB download: heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if growth > 8<<20 {
		t.Errorf("the heap grew by %.1f MiB during a 100 MB download, want at most 8", float64(growth)/(1<<20))
	}
}
