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

// TestShutdownAnswersLongPolls: a graceful shutdown answers held long-polls
// at once instead of waiting for their timeout.
func TestShutdownAnswersLongPolls(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	since := alice.sync(t, url.Values{"set_presence": {"offline"}}).Get("next_batch").Str
	done := make(chan int, 1)
	go func() {
		status, _ := s.Do(t, "GET", v3+"/sync?set_presence=offline&timeout=30000&since="+since, alice.token, nil)
		done <- status
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case status := <-done:
		if status != 200 {
			t.Errorf("held long-poll answered %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held long-poll was not answered")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a long-poll held", d)
	}
}

// TestConcurrentIdenticalSyncs: identical syncs at the same time (one
// build shared) all get the whole, same answer.
func TestConcurrentIdenticalSyncs(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"name": "shared"})
	ev := alice.send(t, roomID, "hello")
	results := make(chan []string, 20)
	for range 20 {
		go func() { results <- timelineIDs(alice.sync(t, url.Values{"set_presence": {"offline"}}), "join", roomID) }()
	}
	for range 20 {
		ids := <-results
		if len(ids) == 0 || ids[len(ids)-1] != ev {
			t.Fatalf("a concurrent sync got timeline %v", ids)
		}
	}
}
