package roomserver

import (
	"errors"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/storage"
)

func TestAuthChainAndServerJoined(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		alice := user("alice")
		roomID, _ := e.createRoom("11", alice)
		msg := e.send(roomID, msgReq(t, alice, "hi"))[0]
		ctx := ctxT(t)
		recs, err := e.db.EventsByID(ctx, []string{msg.Event.EventID()})
		if err != nil {
			t.Fatal(err)
		}
		chain, err := e.rs.AuthChain(ctx, recs, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range chain {
			got[r.EventID] = true
		}
		// The message's auth events (create, power levels, alice's join)
		// and theirs; never the message.
		for _, id := range msg.Event.AuthEventIDs() {
			if !got[id] {
				t.Fatalf("auth event %s missing from %v", id, got)
			}
		}
		if got[msg.Event.EventID()] || len(chain) != 3 {
			t.Fatalf("chain %v", got)
		}
		if _, err := e.rs.AuthChain(ctx, recs, 2); !errors.Is(err, ErrAuthChainTooLarge) {
			t.Fatalf("over the cap: %v", err)
		}

		joined, err := e.rs.ServerJoined(ctx, roomID, testServer)
		if err != nil || !joined {
			t.Fatalf("ServerJoined(own server) = %v, %v", joined, err)
		}
		if joined, err := e.rs.ServerJoined(ctx, roomID, "other.example"); err != nil || joined {
			t.Fatalf("ServerJoined(other) = %v, %v", joined, err)
		}
		if joined, err := e.rs.ServerJoined(ctx, "!nope:x", testServer); err != nil || joined {
			t.Fatalf("ServerJoined(unknown room) = %v, %v", joined, err)
		}
		// Shared history: visible to this server (joined), not to another.
		vis, err := e.rs.FilterVisibleToServer(ctx, testServer, recs)
		if err != nil || !slices.EqualFunc(vis, recs, func(a, b *storage.EventRecord) bool { return a.NID == b.NID }) {
			t.Fatalf("own server: %v, %v", vis, err)
		}
		if vis, err := e.rs.FilterVisibleToServer(ctx, "other.example", recs); err != nil || len(vis) != 0 {
			t.Fatalf("other server: %v, %v", vis, err)
		}
	})
}
