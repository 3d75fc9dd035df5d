package syncapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func BenchmarkHeld(b *testing.B) {
	const conns, users = 2000, 20
	s := servertest.Start(b, 1)[0]
	s.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = conns
	us := make([]*user, users)
	for i := range us {
		us[i] = newUser(b, s, fmt.Sprint("h", i))
	}
	roomID := us[0].createRoom(b, map[string]any{"preset": "public_chat"})
	for _, u := range us[1:] {
		u.join(b, roomID)
	}
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	for i := range conns {
		u := us[i%users]
		ready.Add(1)
		wg.Go(func() {
			since := u.sync(b, url.Values{"filter": {`{"room":{"timeline":{"limit":1}}}`}}).Get("next_batch").Str
			ready.Done()
			u.sync(b, url.Values{"since": {since}, "timeout": {"20000"}})
		})
	}
	ready.Wait()
	time.Sleep(2 * time.Second)
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	b.Logf("goroutines %d; heap in use +%d KB, stacks +%d KB, sys +%d KB; per connection: heap %.1f KB, stack %.1f KB",
		runtime.NumGoroutine(), (ms1.HeapInuse-ms0.HeapInuse)/1024, (ms1.StackInuse-ms0.StackInuse)/1024, (ms1.Sys-ms0.Sys)/1024,
		float64(ms1.HeapInuse-ms0.HeapInuse)/1024/conns, float64(ms1.StackInuse-ms0.StackInuse)/1024/conns)
	if f, err := os.Create(os.Getenv("HELD_HEAP")); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	us[0].send(b, roomID, "wake")
	wg.Wait()
}
