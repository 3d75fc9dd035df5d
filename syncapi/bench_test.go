package syncapi_test

// Benchmarks of the sync paths, for profiling (go test -bench . -cpuprofile).
// The figures that matter are measured with cmd/myelin-bench
// (scripts/bench-cs); these are for finding where the time goes.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// BenchmarkFanout: one message in a room whose members all long-poll; an
// iteration ends when every member's sync has returned it.
func BenchmarkFanout(b *testing.B) {
	const members = 200
	s := servertest.Start(b, 1)[0]
	users := make([]*user, members)
	for i := range users {
		users[i] = newUser(b, s, fmt.Sprint("u", i))
	}
	roomID := users[0].createRoom(b, map[string]any{"preset": "public_chat"})
	for _, u := range users[1:] {
		u.join(b, roomID)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		all  = map[string]chan struct{}{}
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	ready := make(chan struct{}, members)
	for _, u := range users {
		wg.Go(func() {
			since := u.sync(b, url.Values{"filter": {`{"room":{"timeline":{"limit":1}}}`}}).Get("next_batch").Str
			ready <- struct{}{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				res := u.sync(b, url.Values{"since": {since}, "timeout": {"2000"}})
				since = res.Get("next_batch").Str
				for _, ev := range joinedRoom(res, roomID).Get("timeline.events").Array() {
					body := ev.Get("content.body").Str
					mu.Lock()
					seen[body]++
					if seen[body] == members && all[body] != nil {
						close(all[body])
					}
					mu.Unlock()
				}
			}
		})
	}
	for range members {
		<-ready
	}
	time.Sleep(time.Second) // presence settles
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprint("fanout ", i)
		done := make(chan struct{})
		mu.Lock()
		all[body] = done
		mu.Unlock()
		users[0].send(b, roomID, body)
		<-done
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
}

// BenchmarkInitialSync: one user in 100 rooms of 20 messages.
func BenchmarkInitialSync(b *testing.B) {
	s := servertest.Start(b, 1)[0]
	u := newUser(b, s, "alice")
	for range 100 {
		roomID := u.createRoom(b, map[string]any{"preset": "private_chat"})
		for j := range 20 {
			u.send(b, roomID, fmt.Sprint("history ", j))
		}
	}
	b.ResetTimer()
	for range b.N {
		res := u.sync(b, url.Values{"timeout": {"0"}})
		if n := len(res.Get("rooms.join").Map()); n != 100 {
			b.Fatalf("%d rooms", n)
		}
	}
}

// BenchmarkMessages: pages of 100 events backwards through 1,000.
func BenchmarkMessages(b *testing.B) {
	s := servertest.Start(b, 1)[0]
	u := newUser(b, s, "alice")
	roomID := u.createRoom(b, map[string]any{"preset": "private_chat"})
	for i := range 1000 {
		u.send(b, roomID, fmt.Sprint("page ", i))
	}
	b.ResetTimer()
	from := ""
	for range b.N {
		q := "dir=b&limit=100"
		if from != "" {
			q += "&from=" + from
		}
		res := u.ok(b, "GET", room(roomID)+"/messages?"+q, nil)
		from = res.Get("end").Str
		if !strings.HasPrefix(from, "s") {
			from = ""
		}
	}
}
