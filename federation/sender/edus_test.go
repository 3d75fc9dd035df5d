package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

// eduContents returns the content of every EDU of type typ received, in
// order.
func (r *remote) eduContents(typ string) []string {
	var out []string
	for _, txn := range r.received() {
		for _, e := range txn.edus {
			if e.Type == typ {
				out = append(out, string(e.Content))
			}
		}
	}
	return out
}

func numbered(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)) }

// Durable EDUs wait out an outage, then go in order, at most 100 per
// transaction, riding along with the PDUs queued meanwhile.
func TestDurableEDUsWaitOutAnOutageAndRideWithPDUs(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db)
		st.remote.setStatus(http.StatusServiceUnavailable)
		s := st.sender(time.Hour)
		alice := "@alice:" + us
		room := st.createRoom(alice)
		st.invite(room, alice, remoteUser(st.remote, 0))
		waitFor(t, "a backoff", func() bool {
			f, _, err := db.DestinationBackoff(ctx, st.remote.name)
			return err == nil && f == 1
		})
		const n = 250
		for i := range n {
			if err := s.QueueEDU(ctx, []string{st.remote.name, us}, bus.EDU{Type: "m.test", Content: numbered(i), Durable: true}); err != nil {
				t.Fatal(err)
			}
		}
		// Held EDUs are not queued for a destination backing off.
		if err := s.QueueEDU(ctx, []string{st.remote.name}, bus.EDU{Type: "m.held", Content: numbered(0)}); err != nil {
			t.Fatal(err)
		}
		if q, err := db.QueuedEDUCount(ctx, st.remote.name); err != nil || q != n {
			t.Fatalf("%d EDUs stored, %v", q, err)
		}
		if q, err := db.QueuedEDUCount(ctx, us); err != nil || q != 0 {
			t.Fatalf("%d EDUs stored for this server itself, %v", q, err)
		}

		st.remote.setStatus(http.StatusOK)
		s.Wake(st.remote.name)
		waitFor(t, "every EDU", func() bool { return len(st.remote.eduContents("m.test")) == n })
		got := st.remote.eduContents("m.test")
		for i, c := range got {
			if c != string(numbered(i)) {
				t.Fatalf("EDU %d is %s, want %s (in order)", i, c, numbered(i))
			}
		}
		txns := st.remote.received()
		if len(txns[0].pdus) != 1 || len(txns[0].edus) != MaxEDUsPerTransaction {
			t.Errorf("first transaction: %d PDUs, %d EDUs; want the invite and 100 EDUs together", len(txns[0].pdus), len(txns[0].edus))
		}
		for _, txn := range txns {
			if len(txn.edus) > MaxEDUsPerTransaction {
				t.Errorf("a transaction of %d EDUs", len(txn.edus))
			}
		}
		if held := st.remote.eduContents("m.held"); len(held) != 0 {
			t.Errorf("an EDU queued in memory for a destination backing off was sent: %v", held)
		}
		waitFor(t, "the EDU queue to empty", func() bool {
			q, err := db.QueuedEDUCount(ctx, st.remote.name)
			return err == nil && q == 0
		})
	})
}

func TestDurableEDUsSurviveRestart(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	ctx := context.Background()
	st := newStack(t, db)
	st.remote.setStatus(http.StatusInternalServerError)
	s := st.sender(300 * time.Millisecond)
	if err := s.QueueEDU(ctx, []string{st.remote.name}, bus.EDU{Type: "m.test", Content: numbered(1), Durable: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed attempt", func() bool { return st.remote.attempts() > 0 })
	s.Stop()
	st.remote.setStatus(http.StatusOK)
	st.sender(300 * time.Millisecond)
	waitFor(t, "delivery after the restart", func() bool { return len(st.remote.eduContents("m.test")) == 1 })
}

// Another process queues through the bus (Queue): held EDUs reach the
// sender's memory, durable ones its database, and both are sent at once.
func TestQueueFromAnotherProcess(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	ctx := context.Background()
	st := newStack(t, db)
	st.sender(time.Hour)
	q := NewQueue(db, st.bus, us)
	if err := q.QueueEDU(ctx, []string{st.remote.name}, bus.EDU{Type: "m.held", Content: numbered(1)}); err != nil {
		t.Fatal(err)
	}
	if err := q.QueueEDU(ctx, []string{st.remote.name}, bus.EDU{Type: "m.stored", Content: numbered(2), Durable: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both EDUs", func() bool {
		return len(st.remote.eduContents("m.held")) == 1 && len(st.remote.eduContents("m.stored")) == 1
	})
	for _, bad := range []bus.EDU{{Content: numbered(1)}, {Type: "m.x", Content: json.RawMessage(`[1]`)}, {Type: "m.x"},
		{Type: "m.x", Content: numbered(1), Key: "a\x00b", Durable: true}} {
		if err := q.QueueEDU(ctx, []string{st.remote.name}, bad); err == nil {
			t.Errorf("queued %+v", bad)
		}
	}
}

// A held EDU with the key of one still waiting replaces it in place; the
// memory queue is bounded.
func TestHeldEDUsReplaceByKey(t *testing.T) {
	var w worker
	w.hold(bus.EDU{Type: "m.typing", Key: "r a", Content: json.RawMessage(`{"typing":true}`)})
	w.hold(bus.EDU{Type: "m.presence", Key: "@b:x", Content: numbered(1)})
	w.hold(bus.EDU{Type: "m.presence", Key: "r a", Content: numbered(2)}) // same key, other type
	w.hold(bus.EDU{Type: "m.typing", Key: "r a", Content: json.RawMessage(`{"typing":false}`)})
	got := w.takeEDUs(10)
	if len(got) != 3 || string(got[0].Content) != `{"typing":false}` || string(got[2].Content) != `{"n":2}` {
		t.Fatalf("held: %+v", got)
	}
	for i := range maxPendingEDUs + 5 {
		w.hold(bus.EDU{Type: "m.x", Content: numbered(i)})
	}
	if len(w.edus) != maxPendingEDUs || string(w.edus[0].Content) != string(numbered(5)) {
		t.Errorf("bounded queue: %d held, first %s", len(w.edus), w.edus[0].Content)
	}
}

// joinRemote records the remote's user as joined to room, as the
// roomserver would after their join: the sender only reads memberships.
func (st *stack) joinRemote(room string) {
	st.t.Helper()
	ctx := context.Background()
	r, err := st.db.Room(ctx, room)
	if err != nil {
		st.t.Fatal(err)
	}
	if err := st.db.WithTx(ctx, func(tx *storage.Tx) error {
		return tx.SetMembership(ctx, r.NID, remoteUser(st.remote, 99), "join", 1)
	}); err != nil {
		st.t.Fatal(err)
	}
}

// Typing of a local user: sent to the room's other servers when it
// starts, again every typingPing while it goes on, and stopped at its
// deadline; a refresh in between and a remote user's typing send nothing.
func TestTypingOutTimeline(t *testing.T) {
	db := storagetest.Open(t, storage.SQLite)
	st := newStack(t, db)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	s, err := New(Config{DB: db, Bus: st.bus, Roomserver: st.rs, Client: st.client, ServerName: us,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	alice := "@alice:" + us
	room := st.createRoom(alice)
	st.joinRemote(room)
	typ := s.typing
	k := typistKey{room, alice}
	update := func(user string, typing bool, d time.Duration) {
		typ.apply(bus.TypingUpdate{RoomID: room, UserID: user, Typing: typing, DeadlineMS: now().Add(d).UnixMilli()})
	}
	want := func(contents ...string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d typing EDUs", len(contents)), func() bool { return len(st.remote.eduContents("m.typing")) >= len(contents) })
		got := st.remote.eduContents("m.typing")
		if fmt.Sprint(got) != fmt.Sprint(contents) {
			t.Fatalf("typing EDUs %v, want %v", got, contents)
		}
	}
	on := fmt.Sprintf(`{"room_id":%q,"typing":true,"user_id":%q}`, room, alice)
	off := fmt.Sprintf(`{"room_id":%q,"typing":false,"user_id":%q}`, room, alice)

	update(alice, true, 2*time.Minute)
	want(on)
	advance(10 * time.Second)
	update(alice, true, 2*time.Minute) // a refresh: nothing new to say yet
	advance(typingPing)
	typ.due(k, typ.typists[k]) // the ping falls due
	want(on, on)
	advance(3 * time.Minute)
	typ.due(k, typ.typists[k]) // the deadline passes
	want(on, on, off)
	if typ.typists[k] != nil {
		t.Error("typing did not end at its deadline")
	}
	update(alice, false, 0) // not typing any more: nothing to say
	update("@bob:"+st.remote.name, true, time.Minute)
	update(alice, true, time.Minute)
	want(on, on, off, on)
	update(alice, false, 0) // the client stops it
	want(on, on, off, on, off)
}
