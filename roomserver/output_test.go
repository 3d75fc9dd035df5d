package roomserver

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamMessages reads every message of the output stream and returns
// their events.
func (e *env) streamMessages() []OutputEvent {
	e.t.Helper()
	ctx := ctxT(e.t)
	s, err := e.bus.JetStream().Stream(ctx, e.bus.StreamName(OutputStream))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []OutputEvent
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		evs, err := DecodeOutput(m.Data)
		if err != nil || len(evs) == 0 {
			e.t.Fatalf("message %d: %d events, %v", seq, len(evs), err)
		}
		want := strconv.FormatInt(evs[0].StreamPos, 10) + "-" + strconv.FormatInt(evs[len(evs)-1].StreamPos, 10)
		if id := m.Header.Get("Nats-Msg-Id"); id != want {
			e.t.Errorf("message ID %q for the positions %s", id, want)
		}
		out = append(out, evs...)
	}
	return out
}

// An output message is an array of events; one published by an earlier
// version, a single event, reads as one.
func TestDecodeOutput(t *testing.T) {
	evs, err := DecodeOutput([]byte(`[{"stream_pos":3,"room_id":"!r:x","event_id":"$a","type":"m.room.message","sender":"@a:x"},` +
		`{"stream_pos":4,"room_id":"!r:x","event_id":"$b","type":"m.room.member","state_key":"@b:x","sender":"@b:x","membership":"join"}]`))
	if err != nil || len(evs) != 2 || evs[0].EventID != "$a" || evs[1].StreamPos != 4 || *evs[1].StateKey != "@b:x" {
		t.Errorf("array: %+v %v", evs, err)
	}
	evs, err = DecodeOutput([]byte(` {"stream_pos":7,"room_id":"!r:x","event_id":"$c","type":"m.room.message","sender":"@a:x"}`))
	if err != nil || len(evs) != 1 || evs[0].StreamPos != 7 || evs[0].EventID != "$c" {
		t.Errorf("single event: %+v %v", evs, err)
	}
	for _, bad := range []string{``, `"x"`, `[1]`, `{"stream_pos":"x"}`, `[{}`} {
		if evs, err := DecodeOutput([]byte(bad)); err == nil {
			t.Errorf("%q decoded: %+v", bad, evs)
		}
	}
}

// waitForStream waits until the stream holds n messages.
func (e *env) waitForStream(n int) []OutputEvent {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := e.streamMessages()
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutputStream(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		alice, bob := user("alice"), user("bob")
		roomID, outs := e.createRoom("11", alice)
		outs = append(outs, e.join(roomID, bob))
		outs = append(outs, e.send(roomID, msgReq(t, bob, "hi"))...)
		msgs := e.waitForStream(len(outs))
		if len(msgs) != len(outs) {
			t.Fatalf("%d messages on the stream, want %d", len(msgs), len(outs))
		}
		for i, o := range outs {
			m := msgs[i]
			if m.StreamPos != o.StreamPos || m.EventID != o.Event.EventID() || m.RoomID != roomID || m.Type != o.Event.Type() || m.Sender != o.Event.Sender() {
				t.Errorf("message %d = %+v, want the event %s at %d", i, m, o.Event.EventID(), o.StreamPos)
			}
		}
		if m := msgs[len(outs)-2]; m.Membership != "join" || m.StateKey == nil || *m.StateKey != bob {
			t.Errorf("bob's join published as %+v", m)
		}
		if m := msgs[len(outs)-1]; m.StateKey != nil || m.Membership != "" {
			t.Errorf("message published with state_key %v membership %q", m.StateKey, m.Membership)
		}
		// A retried transaction is not published again.
		req := msgReq(t, bob, "once")
		req.Txn = &TxnKey{UserID: bob, DeviceID: "D", TxnID: "1", Endpoint: TxnSend}
		e.send(roomID, req)
		e.send(roomID, req)
		e.rs.Close() // flushes the publisher
		if n := len(e.streamMessages()); n != len(outs)+1 {
			t.Errorf("%d messages after a retried transaction, want %d", n, len(outs)+1)
		}
		pub, err := e.db.PublishedPos(ctxT(t))
		last, _ := e.db.StreamPos(ctxT(t))
		if err != nil || pub != last {
			t.Errorf("published position %d after Close, want %d (%v)", pub, last, err)
		}
	})
}

// A crash between commit and publish: the events are in the database, the
// published position is behind and the stream does not have them. The
// next start publishes them, in order.
func TestRepublishAfterCrash(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		alice := user("alice")
		roomID, _ := e.createRoom("11", alice)
		before, _ := e.db.StreamPos(ctx)
		var lost []Output
		for i := range 5 {
			lost = append(lost, e.send(roomID, msgReq(t, alice, strconv.Itoa(i)))...)
		}
		e.close()
		// The crash: the bus never stored those events (a fresh store) and
		// the database says they were not published.
		if err := os.RemoveAll(filepath.Join(e.dir, "nats")); err != nil {
			t.Fatal(err)
		}
		e.execRaw(`UPDATE roomserver_published SET pos = ` + strconv.FormatInt(before, 10))

		e.open()
		msgs := e.waitForStream(len(lost))
		if len(msgs) != len(lost) {
			t.Fatalf("%d messages republished, want %d", len(msgs), len(lost))
		}
		for i, o := range lost {
			if msgs[i].EventID != o.Event.EventID() || msgs[i].StreamPos != o.StreamPos {
				t.Errorf("republished %d: %+v, want %s at %d", i, msgs[i], o.Event.EventID(), o.StreamPos)
			}
		}
		// New events follow them.
		next := e.send(roomID, msgReq(t, alice, "after"))[0]
		msgs = e.waitForStream(len(lost) + 1)
		if len(msgs) != len(lost)+1 || msgs[len(lost)].StreamPos != next.StreamPos {
			t.Errorf("after the republished events: %+v", msgs[len(msgs)-1])
		}
	})
}

// execRaw runs a statement through a connection of its own.
func (e *env) execRaw(stmt string) {
	e.t.Helper()
	driver, dsn := "postgres", e.dsn
	if strings.HasPrefix(dsn, "sqlite:") {
		driver, dsn = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(context.Background(), stmt); err != nil {
		e.t.Fatal(err)
	}
}
