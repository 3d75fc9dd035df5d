package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// syncedEvent is a timeline event as /sync returns it, with the time the
// test's long-poll got it.
type syncedEvent struct {
	ID, Sender, Body string
	At               time.Time
}

// syncer long-polls one user's /sync in a goroutine and passes on every
// timeline event of one room as it arrives.
type syncer struct {
	events chan syncedEvent
	errs   chan error
}

// startSyncer begins with an initial sync (whose events are not passed
// on) and then long-polls from its next_batch until the test ends.
func startSyncer(t *testing.T, s *servertest.Server, token, roomID string) *syncer {
	t.Helper()
	sy := &syncer{events: make(chan syncedEvent, 1000), errs: make(chan error, 1)}
	// A timeline limit well above what one poll can bring, so that no
	// response is "limited" and skips events.
	filter := `{"room":{"timeline":{"limit":100}}}`
	since, _, err := syncOnce(context.Background(), s, token, roomID, "", filter, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The test's end cancels the long-poll in flight.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			next, evs, err := syncOnce(ctx, s, token, roomID, since, filter, 10*time.Second)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				select {
				case sy.errs <- err:
				default:
				}
				return
			}
			since = next
			for _, ev := range evs {
				sy.events <- ev
			}
		}
	}()
	return sy
}

// syncOnce makes one /sync request and returns its next_batch and the
// room's timeline events, stamped with the time the response arrived.
func syncOnce(ctx context.Context, s *servertest.Server, token, roomID, since, filter string, timeout time.Duration) (string, []syncedEvent, error) {
	q := url.Values{"filter": {filter}, "timeout": {fmt.Sprint(timeout.Milliseconds())}, "set_presence": {"offline"}}
	if since != "" {
		q.Set("since", since)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ClientURL+"/_matrix/client/v3/sync?"+q.Encode(), nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.Client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	at := time.Now()
	var body struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Limited bool `json:"limited"`
					Events  []struct {
						EventID string `json:"event_id"`
						Sender  string `json:"sender"`
						Type    string `json:"type"`
						Content struct {
							Body string `json:"body"`
						} `json:"content"`
					} `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("sync: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", nil, fmt.Errorf("sync: %v", err)
	}
	room := body.Rooms.Join[roomID]
	if since != "" && room.Timeline.Limited {
		return "", nil, fmt.Errorf("sync: a limited timeline in an incremental sync")
	}
	var out []syncedEvent
	for _, ev := range room.Timeline.Events {
		if ev.Type == "m.room.message" {
			out = append(out, syncedEvent{ID: ev.EventID, Sender: ev.Sender, Body: ev.Content.Body, At: at})
		}
	}
	return body.NextBatch, out, nil
}

// next waits for the syncer's next message event.
func (sy *syncer) next(t *testing.T, what string) syncedEvent {
	t.Helper()
	select {
	case ev := <-sy.events:
		return ev
	case err := <-sy.errs:
		t.Fatalf("%s: %v", what, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing within 30 s", what)
	}
	return syncedEvent{}
}

// Two real servers over real TLS: messages sent through one server's
// client API reach a user of the other through its /sync, carried only by
// the federation senders and /send. The room reaches B by replay (remote
// joins stand in for that later), then nothing the test does moves an
// event between the servers.
func TestMessagesFlowBothWaysBetweenServers(t *testing.T) {
	ro := newRoomOnA(t) // alice@A's public_chat room with 3 messages
	ro.shareWithB(t)    // the room replayed into B, and bob@B's join on both
	bobID, bobToken := ro.b.RegisterUser(t, "bob")
	if bobID != "@bob:"+ro.b.Name {
		t.Fatalf("registered %s, want the user who joined", bobID)
	}
	bobSync := startSyncer(t, ro.b, bobToken, ro.roomID)
	aliceSync := startSyncer(t, ro.a, ro.token, ro.roomID)

	// (1) alice sends 20 messages on A; bob gets every one on B, in
	// order.
	const n = 20
	sentAt := make(map[string]time.Time, n)
	var sent []string
	for i := range n {
		id := ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": fmt.Sprint("to B ", i)})
		sentAt[id] = time.Now()
		sent = append(sent, id)
	}
	latencies := make([]time.Duration, 0, n)
	for i, id := range sent {
		got := bobSync.next(t, fmt.Sprintf("bob's sync on B, message %d of %d", i+1, n))
		if got.ID != id || got.Body != fmt.Sprint("to B ", i) {
			t.Fatalf("bob's message %d is %s %q, want %s %q", i, got.ID, got.Body, id, fmt.Sprint("to B ", i))
		}
		latencies = append(latencies, got.At.Sub(sentAt[id]))
	}
	// alice sees her own messages too (and nothing else yet).
	for i := range n {
		if got := aliceSync.next(t, "alice's own messages"); got.ID != sent[i] {
			t.Fatalf("alice's sync has %s at %d, want %s", got.ID, i, sent[i])
		}
	}
	slices.Sort(latencies)
	t.Logf("A→B delivery, send response to bob's /sync, %d messages sent back to back: p50 %v, p99 %v (min %v, max %v)",
		n, latencies[n/2], latencies[(n*99+99)/100-1], latencies[0], latencies[n-1])

	// (2) bob answers on B; B's sender delivers it to A, and alice's sync
	// on A shows it.
	var resp struct {
		EventID string `json:"event_id"`
	}
	ro.b.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(ro.roomID)+"/send/m.room.message/reply1",
		bobToken, map[string]any{"msgtype": "m.text", "body": "hello from B"}, &resp)
	replyAt := time.Now()
	got := aliceSync.next(t, "bob's reply in alice's sync on A")
	if got.ID != resp.EventID || got.Sender != bobID || got.Body != "hello from B" {
		t.Fatalf("alice got %+v, want bob's reply %s", got, resp.EventID)
	}
	t.Logf("B→A delivery of bob's reply: %v", got.At.Sub(replyAt))
	if got := bobSync.next(t, "bob's own reply"); got.ID != resp.EventID {
		t.Fatalf("bob's sync has %s, want his reply %s", got.ID, resp.EventID)
	}
}
