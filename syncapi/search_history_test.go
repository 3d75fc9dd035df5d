package syncapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// TestSearchBackfilledHistory: history received late (stored below every
// other position, as /backfill answers are) is found by /search: after
// the newer history in the recent order, page by page, with its context
// reaching back into it.
func TestSearchBackfilledHistory(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	present := alice.send(t, roomID, "a present walrus")

	// Two older messages, as another server would send them: the older
	// one first in the room's history.
	ctx := context.Background()
	evs, state := historical(t, s, alice.id, roomID, present,
		map[string]any{"msgtype": "m.text", "body": "older words"},
		map[string]any{"msgtype": "m.text", "body": "an old walrus"})
	older, old := evs[0], evs[1]
	if n, err := s.Roomserver().InputHistorical(ctx, roomID, []*pdu.Event{old, older}, state); err != nil || n != 2 {
		t.Fatalf("InputHistorical: %d, %v", n, err)
	}

	// The index finds backfilled history when it next wakes: within a few
	// seconds.
	criteria := map[string]any{"search_term": "walrus", "order_by": "recent", "filter": map[string]any{"limit": 1},
		"event_context": map[string]any{"before_limit": 1, "after_limit": 0}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res := alice.search(t, criteria, "")
		if res.Get("count").Int() == 2 {
			if got := resultIDs(res); !slices.Equal(got, []string{present}) {
				t.Fatalf("first page: %v, want %s", got, present)
			}
			second := alice.search(t, criteria, res.Get("next_batch").Str)
			if got := resultIDs(second); !slices.Equal(got, []string{old.EventID()}) || second.Get("next_batch").Exists() {
				t.Fatalf("second page: %v (next_batch %q), want %s", got, second.Get("next_batch").Str, old.EventID())
			}
			if before := second.Get("results.0.context.events_before.0.event_id").Str; before != older.EventID() {
				t.Fatalf("context of the old walrus: %s, want %s before it", second.Get("results.0.context").Raw, older.EventID())
			}
			// /context reaches back into it too, and its start token
			// pages on from there.
			c := alice.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(old.EventID())+"?limit=2", nil)
			if got := c.Get("events_before.0.event_id").Str; got != older.EventID() {
				t.Fatalf("/context of the old walrus: %s, want %s before it", c.Raw, older.EventID())
			}
			page := alice.ok(t, "GET", room(roomID)+"/messages?dir=b&from="+url.QueryEscape(c.Get("start").Str), nil)
			if n := len(page.Get("chunk").Array()); n != 0 {
				t.Fatalf("/messages before the oldest event: %s", page.Raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backfilled message is not found: %s", res.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// historical builds events as another server would send them for the
// room's history (InputHistorical), each citing the one before it, the
// first citing after, with the contents given, and returns them with the
// state after after.
func historical(t *testing.T, s *servertest.Server, sender, roomID, after string, contents ...map[string]any) ([]*pdu.Event, []*pdu.Event) {
	t.Helper()
	ctx := context.Background()
	parent, err := s.Roomserver().Event(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	state, err := s.Roomserver().StateAfter(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	keyID, key := s.Keys().Current()
	var out []*pdu.Event
	prev, depth := after, parent.Event.Depth()
	for _, c := range contents {
		content, _ := json.Marshal(c)
		depth++
		ev, err := pdu.ProtoEvent{Type: "m.room.message", Sender: sender, RoomID: roomID, Content: content,
			PrevEvents: []string{prev}, AuthEvents: parent.Event.AuthEventIDs(), Depth: depth,
			OriginServerTS: time.Now().UnixMilli()}.Build(parent.Event.Version(), s.Name, keyID, key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
		prev = ev.EventID()
	}
	return out, state
}
