package sender_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Two real servers: A's sender delivers an invite to B's /send over
// signed TLS; with B stopped, A backs off and keeps the event queued.
func TestBetweenServers(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	ctx := context.Background()
	alice := "@alice:" + a.Name
	v, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
	if err != nil {
		t.Fatal(err)
	}
	state := func(typ, key string, content string) roomserver.EventRequest {
		return roomserver.EventRequest{Type: typ, StateKey: &key, Sender: alice, Content: json.RawMessage(content)}
	}
	pl := `{"users":{"` + alice + `":100}}`
	if v.PrivilegedCreators {
		pl = `{}`
	}
	room, _, err := a.Roomserver().CreateRoom(ctx, roomserver.CreateRoomRequest{Creator: alice, Version: v,
		Initial: []roomserver.EventRequest{
			state("m.room.member", alice, `{"membership":"join"}`),
			state("m.room.power_levels", "", pl),
			state("m.room.join_rules", "", `{"join_rule":"invite"}`),
		}})
	if err != nil {
		t.Fatal(err)
	}
	invite := func(user string) {
		t.Helper()
		if _, err := a.Roomserver().Send(ctx, room, state("m.room.member", user, `{"membership":"invite"}`)); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	queued := func() int {
		n, err := a.DB().QueuedPDUCount(ctx, b.Name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	invite("@bob:" + b.Name)
	wait("the invite to be queued and then delivered", func() bool {
		f, _, err := a.DB().DestinationBackoff(ctx, b.Name)
		if err != nil || f != 0 {
			t.Fatalf("backoff for a server that is up: %d, %v", f, err)
		}
		return queued() == 0 && consumedAll(t, a)
	})

	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	invite("@carol:" + b.Name)
	wait("a backoff for the stopped server", func() bool {
		f, at, err := a.DB().DestinationBackoff(ctx, b.Name)
		return err == nil && f == 1 && at > time.Now().UnixMilli()
	})
	if n := queued(); n != 1 {
		t.Fatalf("%d events queued for the stopped server, want 1", n)
	}
}

// consumedAll reports whether A's sender has acknowledged every message of
// the output stream, so that an empty queue means sent rather than not
// yet queued. (A 4xx answer would empty the queue too; the tests with a
// fake remote tell the two apart.)
func consumedAll(t *testing.T, a *servertest.Server) bool {
	t.Helper()
	info, err := a.Bus().JetStream().Consumer(context.Background(), a.Bus().StreamName(roomserver.OutputStream), "federation_sender")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ci.AckFloor.Stream > 0 && ci.NumPending == 0 && ci.NumAckPending == 0
}
