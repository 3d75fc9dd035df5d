package federation_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// A gap longer than /get_missing_events fills: C is down while A sends
// more events than the rounds fetch. Back up, C gets A's latest event,
// fetches what the rounds allow, takes the oldest of those with the state
// before it from A (GET /state), and accepts them all: it holds the last
// events, its state has the topic set early in the gap (which it never
// received as an event of the timeline), and it agrees with A and B.
func TestGapLongerThanMissingEventsTakesStateFromOrigin(t *testing.T) {
	tr := newTrio(t)
	ctx := ctxT(t)
	c := tr.srv[carol]
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	topic := must(t)(tr.setState(ctx, alice, "m.room.topic", "", map[string]any{"topic": "set while C was down"}))

	// More than missingRounds × missingLimit (200) messages, sent in jobs
	// of 100 straight to A's roomserver, which is quicker than the client
	// API and the same room path.
	const gap, fetched = 300, 200
	var sent []string
	for len(sent) < gap {
		var reqs []roomserver.EventRequest
		for n := len(sent); n < min(gap, len(sent)+100); n++ {
			content, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": fmt.Sprint("gap ", n)})
			reqs = append(reqs, roomserver.EventRequest{Type: "m.room.message", Sender: tr.user[alice], Content: content})
		}
		outs, err := tr.srv[alice].Roomserver().Send(ctx, tr.roomID, reqs...)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			sent = append(sent, o.Event.EventID())
		}
	}
	last := sent[len(sent)-1]

	c.Restart(t)
	// A's sender sends C its latest event when its retry comes (5 s after
	// the failure); C fetches the gap from there.
	deadline := time.Now().Add(60 * time.Second)
	for !holds(t, c, last) {
		if time.Now().After(deadline) {
			t.Fatal("C does not hold A's latest event 60 s after its restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The latest and the 200 before it (what the rounds fetch, the oldest
	// of them taken in with its state) are in C's timeline; the topic is
	// in its state.
	for i, id := range sent[gap-fetched-1:] {
		if !holds(t, c, id) {
			t.Fatalf("C lacks %s, %d from the end", id, fetched+1-i)
		}
	}
	if ev, err := c.Roomserver().CurrentStateEvent(ctx, tr.roomID, pdu.StateKey{Type: "m.room.topic"}); err != nil || ev == nil || ev.EventID() != topic {
		t.Fatalf("C's topic: %v %v, want %s", ev, err, topic)
	}
	tr.sameState(t)

	// C takes part again: carol's message, whose prev events join both
	// sides of C's gap, reaches A and B.
	msg := must(t)(tr.send(ctx, carol, "back after a long gap"))
	tr.waitAllHold(t, "carol's message after the gap", []string{msg})
	tr.sameState(t)
}
