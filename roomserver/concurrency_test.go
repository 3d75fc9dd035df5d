package roomserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/myelin-chat/myelin/storage"
)

// Many goroutines sending to one room: the DAG stays a line (no forks),
// depths are contiguous, positions unique and in depth order.
func TestConcurrentSendsToOneRoom(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := user("alice")
		roomID, outs := e.createRoom("11", alice)
		const senders, each = 16, 25
		for i := range senders {
			e.join(roomID, user(fmt.Sprint("u", i)))
		}
		var (
			mu  sync.Mutex
			got []Output
			wg  sync.WaitGroup
		)
		for i := range senders {
			wg.Go(func() {
				for j := range each {
					o, err := e.rs.Send(ctx, roomID, msgReq(t, user(fmt.Sprint("u", i)), fmt.Sprint(j)))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, o...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(got) != senders*each {
			t.Fatalf("%d events sent, want %d", len(got), senders*each)
		}
		sort.Slice(got, func(a, b int) bool { return got[a].StreamPos < got[b].StreamPos })
		firstDepth := outs[len(outs)-1].Event.Depth() + senders + 1
		seen := map[int64]bool{}
		for i, o := range got {
			if seen[o.StreamPos] {
				t.Fatalf("position %d given twice", o.StreamPos)
			}
			seen[o.StreamPos] = true
			if o.Event.Depth() != firstDepth+int64(i) {
				t.Fatalf("event %d in stream order has depth %d, want %d", i, o.Event.Depth(), firstDepth+int64(i))
			}
			if i > 0 {
				prev := o.Event.PrevEventIDs()
				if len(prev) != 1 || prev[0] != got[i-1].Event.EventID() {
					t.Fatalf("event %d cites %v, want the previous event %s", i, prev, got[i-1].Event.EventID())
				}
			}
		}
		room, err := e.db.Room(ctx, roomID)
		if err != nil {
			t.Fatal(err)
		}
		ext, err := e.db.ForwardExtremities(ctx, room.NID)
		if err != nil || len(ext) != 1 || ext[0].EventID != got[len(got)-1].Event.EventID() {
			t.Errorf("forward extremities %v, %v; want the last event only", ext, err)
		}
		// /messages sees each exactly once, in the same order.
		var paged []string
		from := storage.TopoMax
		for {
			page, err := e.db.RoomMessages(ctx, roomID, from, 37, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				paged = append(paged, r.EventID)
			}
			from = page[len(page)-1].Pos()
		}
		total := len(outs) + senders + senders*each
		if len(paged) != total {
			t.Fatalf("paginated %d events, want %d", len(paged), total)
		}
		for i, o := range got {
			if paged[len(got)-1-i] != o.Event.EventID() {
				t.Fatalf("pagination order differs from stream order at %d", i)
			}
		}
	})
}

// Sends to many rooms at once share transactions but never mix rooms up.
func TestConcurrentSendsToManyRooms(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		const rooms, each = 8, 20
		ids := make([]string, rooms)
		var wg sync.WaitGroup
		for i := range rooms {
			wg.Go(func() {
				id, _, err := e.rs.CreateRoom(ctx, CreateRoomRequest{Creator: user(fmt.Sprint("c", i)),
					Initial: []EventRequest{memberReq(t, user(fmt.Sprint("c", i)), user(fmt.Sprint("c", i)), "join")}})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = id
				for j := range each {
					if _, err := e.rs.Send(ctx, id, msgReq(t, user(fmt.Sprint("c", i)), fmt.Sprint(j))); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i, id := range ids {
			evs, err := e.db.EventsInRange(ctx, id, 0, 1<<62, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2+each {
				t.Errorf("room %d has %d events, want %d", i, len(evs), 2+each)
			}
			for k, ev := range evs {
				if ev.Depth != int64(k+1) {
					t.Errorf("room %d event %d has depth %d", i, k, ev.Depth)
				}
			}
		}
	})
}

func TestTransactionIDsAreIdempotentAcrossRestarts(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := user("alice")
		roomID, _ := e.createRoom("11", alice)
		txn := &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: "t1", Endpoint: TxnSend}
		req := msgReq(t, alice, "once")
		req.Txn = txn
		first := e.send(roomID, req)[0]

		again := e.send(roomID, req)[0]
		if again.Event.EventID() != first.Event.EventID() || again.StreamPos != first.StreamPos {
			t.Fatalf("retry gave %s at %d, want %s at %d", again.Event.EventID(), again.StreamPos, first.Event.EventID(), first.StreamPos)
		}
		// Same transaction ID from another device, or in another room, is
		// another event.
		other := req
		other.Txn = &TxnKey{UserID: alice, DeviceID: "OTHER", TxnID: "t1", Endpoint: TxnSend}
		if o := e.send(roomID, other)[0]; o.Event.EventID() == first.Event.EventID() {
			t.Error("another device's transaction returned the first event")
		}

		e.reopen()
		// Even with different content, the stored transaction wins.
		req.Content = content(t, map[string]string{"msgtype": "m.text", "body": "changed"})
		after := e.send(roomID, req)[0]
		if after.Event.EventID() != first.Event.EventID() {
			t.Fatalf("retry after restart created %s, want %s", after.Event.EventID(), first.Event.EventID())
		}
		n := 0
		evs, _ := e.db.EventsInRange(ctx, roomID, 0, 1<<62, 0, false)
		for _, ev := range evs {
			if ev.Type == "m.room.message" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d messages stored, want 2", n)
		}
		ids, err := e.db.TxnIDs(ctx, alice, "DEV", []string{first.Event.EventID()})
		if err != nil || ids[first.Event.EventID()] != "t1" {
			t.Errorf("TxnIDs = %v, %v", ids, err)
		}
	})
}

// A transaction ID is scoped by endpoint: the same ID on /send and on
// /redact is two requests, each idempotent on its own, across a restart.
func TestTransactionIDsPerEndpoint(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := user("alice")
		roomID, _ := e.createRoom("11", alice)
		msg := msgReq(t, alice, "to redact")
		msg.Txn = &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: "same", Endpoint: TxnSend}
		sent := e.send(roomID, msg)[0]
		red := EventRequest{Type: "m.room.redaction", Sender: alice, Content: content(t, map[string]string{}),
			Redacts: sent.Event.EventID(), Txn: &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: "same", Endpoint: TxnRedact}}
		redaction := e.send(roomID, red)[0]
		if redaction.Event.EventID() == sent.Event.EventID() || redaction.Event.Type() != "m.room.redaction" {
			t.Fatalf("the redaction with the message's transaction ID returned %s (%s)", redaction.Event.EventID(), redaction.Event.Type())
		}
		if got, err := e.rs.Event(ctx, sent.Event.EventID()); err != nil || got.RedactedBy != redaction.Event.EventID() {
			t.Fatalf("message after the redaction: %+v, %v", got, err)
		}
		e.reopen()
		if again := e.send(roomID, msg)[0]; again.Event.EventID() != sent.Event.EventID() {
			t.Errorf("send retried: %s, want %s", again.Event.EventID(), sent.Event.EventID())
		}
		if again := e.send(roomID, red)[0]; again.Event.EventID() != redaction.Event.EventID() {
			t.Errorf("redact retried: %s, want %s", again.Event.EventID(), redaction.Event.EventID())
		}
		// An endpoint is required.
		noEndpoint := msgReq(t, alice, "x")
		noEndpoint.Txn = &TxnKey{UserID: alice, DeviceID: "DEV", TxnID: "n"}
		if _, err := e.rs.Send(ctx, roomID, noEndpoint); err == nil {
			t.Error("a transaction without an endpoint was accepted")
		}
	})
}

// Jobs queued while a batch runs: those for its rooms join it (up to
// maxBatch in all), the others wait for the next batch ahead of what is
// queued after them, and one whose caller gave up is answered at once.
func TestAbsorbQueuedJobs(t *testing.T) {
	rs := &Roomserver{queue: make(chan *job, 8)}
	mk := func(ctx context.Context, room string) *job {
		return &job{ctx: ctx, roomID: room, done: make(chan jobResult, 1)}
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	a1, b1, dead, a2, a3 := mk(bg, "!a"), mk(bg, "!b"), mk(gone, "!a"), mk(bg, "!a"), mk(bg, "!a")
	for _, j := range []*job{a1, b1, dead, a2, a3} {
		rs.queue <- j
	}
	more := rs.absorb([]string{"!a", "!c"}, maxBatch-2)
	if len(more) != 2 || more[0] != a1 || more[1] != a2 {
		t.Fatalf("absorbed %v, want a1 and a2", more)
	}
	if len(rs.held) != 1 || rs.held[0] != b1 {
		t.Fatalf("held %v, want b1", rs.held)
	}
	select {
	case r := <-dead.done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("the abandoned job got %v", r.err)
		}
	default:
		t.Error("the abandoned job was not answered")
	}
	later := mk(bg, "!c")
	rs.queue <- later
	if batch := rs.collect(nil); len(batch) != 3 || batch[0] != b1 || batch[1] != a3 || batch[2] != later {
		t.Errorf("next batch %v, want b1, a3, then the later job", batch)
	}
	if len(rs.held) != 0 {
		t.Errorf("still held: %v", rs.held)
	}
}
