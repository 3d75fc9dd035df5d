package syncapi_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// TestLongPollWakesOnMessage checks that a waiting /sync returns as soon
// as another user's message is committed, far before its timeout.
func TestLongPollWakesOnMessage(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	since := alice.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str

	var worst time.Duration
	for i := range 5 {
		type result struct {
			ids  []string
			next string
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			// set_presence=offline: alice's own presence would wake her too.
			res := alice.sync(t, url.Values{"since": {since}, "timeout": {"20000"}, "set_presence": {"offline"}})
			done <- result{timelineIDs(res, "join", roomID), res.Get("next_batch").Str, time.Now()}
		}()
		time.Sleep(50 * time.Millisecond) // let the sync start waiting
		sent := time.Now()
		ev := bob.send(t, roomID, "hello "+string(rune('a'+i)))
		select {
		case r := <-done:
			if !slices.Contains(r.ids, ev) {
				t.Fatalf("woken sync timeline %v lacks %s", r.ids, ev)
			}
			worst = max(worst, r.at.Sub(sent))
			since = r.next
		case <-time.After(10 * time.Second):
			t.Fatal("the long-poll did not return within 10s of the message")
		}
	}
	t.Logf("slowest wake-up (send included): %v", worst)
	if worst > 2*time.Second {
		t.Errorf("a long-poll took %v to return a message", worst)
	}
}
