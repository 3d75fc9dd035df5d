package roomserver

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Benchmarks of the input path on SQLite (scripts/bench runs them):
//
//	go test -run '^$' -bench . -benchtime 3000x ./roomserver/

// BenchmarkSendOneRoom: 10 concurrent senders into one room, as the
// issue's message benchmark does. Reports events/s and send latency.
func BenchmarkSendOneRoom(b *testing.B) {
	e := openBenchEnv(b)
	alice := user("alice")
	roomID, _ := e.createRoomB(b, alice)
	const senders = 10
	for i := range senders {
		if _, err := e.rs.Send(b.Context(), roomID, memberReq(b, user(fmt.Sprint("s", i)), user(fmt.Sprint("s", i)), "join")); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				// With a transaction ID, as every client send has.
				req := msgReq(b, user(fmt.Sprint("s", i)), "hello")
				req.Txn = &TxnKey{UserID: req.Sender, DeviceID: "BENCH", TxnID: fmt.Sprint(n), Endpoint: TxnSend}
				t0 := time.Now()
				if _, err := e.rs.Send(b.Context(), roomID, req); err != nil {
					b.Error(err)
					return
				}
				lat[n] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, lat, elapsed)
}

// BenchmarkReceiveTransactions: a remote user's messages, each citing the
// one before, received in transactions of 50 (InputReceived, as a /send
// gives them: signatures, auth, persisting). Reports events/s.
func BenchmarkReceiveTransactions(b *testing.B) {
	remote := newFakeRemote(b)
	e := newEnvWithRemote(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), remote)
	ver, _ := pdu.GetRoomVersion("11")
	alice, bob := user("alice"), "@bob:"+remoteServer
	roomID, _ := e.createRoomB(b, alice)
	create, pl, join := e.remoteJoin(b, remote, ver, roomID, bob)
	if r := e.input(roomID, join)[0]; r.Output == nil {
		b.Fatalf("join: %+v", r)
	}
	evs := make([]*pdu.Event, b.N)
	prev := join
	for i := range evs {
		prev = remote.build(b, ver, roomID, bob, "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": fmt.Sprint("message ", i)},
			[]*pdu.Event{prev}, []*pdu.Event{create, pl, join})
		evs[i] = prev
	}
	b.ResetTimer()
	start := time.Now()
	for txn := range slices.Chunk(evs, 50) {
		for _, r := range e.input(roomID, txn...) {
			if r.Output == nil {
				b.Fatalf("%s: %+v", r.EventID, r)
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkJoin: joins to a room that already has 10 or 1,000 members.
func BenchmarkJoin(b *testing.B) {
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprint(members, "members"), func(b *testing.B) {
			e := openBenchEnv(b)
			alice := user("alice")
			roomID, _ := e.createRoomB(b, alice)
			for i := 1; i < members; i++ {
				if _, err := e.rs.Send(b.Context(), roomID, memberReq(b, user(fmt.Sprint("m", i)), user(fmt.Sprint("m", i)), "join")); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				u := user(fmt.Sprint("j", i))
				t0 := time.Now()
				if _, err := e.rs.Send(b.Context(), roomID, memberReq(b, u, u, "join")); err != nil {
					b.Fatal(err)
				}
				lat[i] = time.Since(t0)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			reportLatency(b, lat, elapsed)
		})
	}
}

// BenchmarkCreateRoom: rooms created one after another with the events
// of a private_chat preset.
func BenchmarkCreateRoom(b *testing.B) {
	e := openBenchEnv(b)
	alice := user("alice")
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		e.createRoomB(b, alice)
		lat[i] = time.Since(t0)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, lat, elapsed)
}

func openBenchEnv(b *testing.B) *env {
	return newEnv(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
}

func (e *env) createRoomB(b *testing.B, creator string) (string, []Output) {
	roomID, outs, err := e.rs.CreateRoom(b.Context(), CreateRoomRequest{Creator: creator, Initial: []EventRequest{
		memberReq(b, creator, creator, "join"),
		stateReq(b, creator, "m.room.power_levels", "", map[string]any{"users": map[string]int{creator: 100}}),
		stateReq(b, creator, "m.room.join_rules", "", map[string]any{"join_rule": "public"}),
		stateReq(b, creator, "m.room.history_visibility", "", map[string]any{"history_visibility": "shared"}),
		stateReq(b, creator, "m.room.guest_access", "", map[string]any{"guest_access": "can_join"}),
		stateReq(b, creator, "m.room.name", "", map[string]any{"name": "bench"}),
	}})
	if err != nil {
		b.Fatal(err)
	}
	return roomID, outs
}

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
