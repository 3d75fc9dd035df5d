package push

// Tests of the Service on its own parts (database, bus, roomserver),
// stopped and started again as a process would be: nothing is lost or
// doubled across a restart.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/storage/storagetest"
)

const us = "us.test"

type stack struct {
	t     *testing.T
	db    *storage.DB
	bus   *bus.Bus
	rs    *roomserver.Roomserver
	svc   *Service
	close func()
}

// newStack starts what a process runs: the bus, the Service (its
// gateway requests through client) and the roomserver it observes.
func newStack(t *testing.T, db *storage.DB, client *http.Client) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ring, err := keys.LoadOrGenerate(filepath.Join(dir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Namespace: bus.NamespaceFor(us), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{DB: db, Bus: b, ServerName: us, Logger: logger,
		HTTPClient: client, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := roomserver.New(roomserver.Deps{DB: db, Bus: b, ServerName: us, Keys: ring, Logger: logger, Observer: svc})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	st := &stack{t: t, db: db, bus: b, rs: rs, svc: svc, close: func() {
		once.Do(func() {
			rs.Close()
			svc.Stop()
			b.Close()
		})
	}}
	t.Cleanup(st.close)
	return st
}

func (st *stack) event(sender, typ string, stateKey *string, content any) roomserver.EventRequest {
	raw, err := json.Marshal(content)
	if err != nil {
		st.t.Fatal(err)
	}
	return roomserver.EventRequest{Type: typ, StateKey: stateKey, Sender: sender, Content: raw}
}

// room creates a public room of alice's that the others join.
func (st *stack) room(alice string, others ...string) string {
	st.t.Helper()
	v, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
	if err != nil {
		st.t.Fatal(err)
	}
	empty := ""
	pl := map[string]any{"users": map[string]int{alice: 100}}
	if v.PrivilegedCreators {
		pl = map[string]any{}
	}
	roomID, _, err := st.rs.CreateRoom(context.Background(), roomserver.CreateRoomRequest{Creator: alice, Version: v,
		Initial: []roomserver.EventRequest{
			st.event(alice, "m.room.member", &alice, map[string]any{"membership": "join"}),
			st.event(alice, "m.room.power_levels", &empty, pl),
			st.event(alice, "m.room.join_rules", &empty, map[string]any{"join_rule": "public"}),
		}})
	if err != nil {
		st.t.Fatal(err)
	}
	for _, u := range others {
		st.send(roomID, st.event(u, "m.room.member", &u, map[string]any{"membership": "join"}))
	}
	return roomID
}

func (st *stack) send(roomID string, req roomserver.EventRequest) string {
	st.t.Helper()
	outs, err := st.rs.Send(context.Background(), roomID, req)
	if err != nil {
		st.t.Fatal(err)
	}
	return outs[0].Event.EventID()
}

func (st *stack) message(roomID, sender, body string) string {
	return st.send(roomID, st.event(sender, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": body}))
}

func (st *stack) notified(user string) []string {
	st.t.Helper()
	ns, err := st.db.Notifications(context.Background(), user, 0, 100, false)
	if err != nil {
		st.t.Fatal(err)
	}
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.EventID)
	}
	return ids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An event's notifications commit with it: they are there when Send
// returns, for everyone but the sender.
func TestNotificationsCommitWithEvent(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db, nil)
		alice, bob, carol := "@alice:"+us, "@bob:"+us, "@carol:"+us
		roomID := st.room(alice, bob, carol)
		m1 := st.message(roomID, alice, "one")
		if got := st.notified(bob); len(got) != 1 || got[0] != m1 {
			t.Fatalf("bob's notifications when the send returned: %v", got)
		}
		m2 := st.message(roomID, bob, "two")
		if got := st.notified(carol); len(got) != 2 || got[0] != m2 || got[1] != m1 {
			t.Errorf("carol's notifications: %v", got)
		}
		if got := st.notified(alice); len(got) != 1 || got[0] != m2 {
			t.Errorf("alice's notifications: %v", got)
		}
	})
}

// A month on, read notifications are pruned; unread ones stay.
func TestPruneReadNotifications(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		st := newStack(t, db, nil)
		alice, bob, carol := "@alice:"+us, "@bob:"+us, "@carol:"+us
		roomID := st.room(alice, bob, carol)
		m1 := st.message(roomID, alice, "one")
		m2 := st.message(roomID, bob, "two") // bob has read m1
		if err := st.svc.pruneNotifications(); err != nil {
			t.Fatal(err)
		}
		if got := st.notified(bob); len(got) != 1 {
			t.Fatalf("bob's notifications pruned too early: %v", got)
		}
		st.svc.cfg.Now = func() time.Time { return time.Now().Add(notificationRetention + time.Hour) }
		if err := st.svc.pruneNotifications(); err != nil {
			t.Fatal(err)
		}
		if got := st.notified(bob); len(got) != 0 {
			t.Errorf("bob's read notification was kept: %v", got)
		}
		if got := st.notified(carol); len(got) != 2 || got[0] != m2 || got[1] != m1 {
			t.Errorf("carol's unread notifications: %v", got)
		}
	})
}

// Pushes queued for a gateway that is down are sent after a restart.
func TestPushQueueSurvivesRestart(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db, nil)
		var (
			mu     sync.Mutex
			status = http.StatusServiceUnavailable
			got    []string
		)
		gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Notification struct {
					EventID string `json:"event_id"`
				} `json:"notification"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			defer mu.Unlock()
			if status == http.StatusOK {
				got = append(got, body.Notification.EventID)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"rejected":[]}`)
		}))
		t.Cleanup(gw.Close)
		alice, bob := "@alice:"+us, "@bob:"+us
		roomID := st.room(alice, bob, "@carol:"+us)
		if err := db.SetPusher(ctx, storage.Pusher{UserID: bob, AppID: "app", Pushkey: "k", Kind: "http", Data: []byte(`{}`),
			URL: gw.URL + "/_matrix/push/v1/notify", PushkeyTS: 1}, false); err != nil {
			t.Fatal(err)
		}
		client := NewGatewayClient(nil, true)
		st.close()
		st = newStack(t, db, client)
		m1 := st.message(roomID, alice, "one")
		m2 := st.message(roomID, alice, "two")
		ps, _ := db.Pushers(ctx, bob)
		waitFor(t, "a backoff", func() bool {
			p, err := db.PusherByID(ctx, ps[0].ID)
			q, _ := db.QueuedPushes(ctx, ps[0].ID, 10)
			return err == nil && p.Failures > 0 && len(q) == 2
		})
		st.close()
		mu.Lock()
		status = http.StatusOK
		mu.Unlock()
		newStack(t, db, client)
		waitFor(t, "delivery after the restart", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 2
		})
		if got[0] != m1 || got[1] != m2 {
			t.Errorf("delivered %v, want %s %s in order", got, m1, m2)
		}
		waitFor(t, "the queue to empty", func() bool {
			q, _ := db.QueuedPushes(ctx, ps[0].ID, 10)
			return len(q) == 0
		})
	})
}

// The gateway client refuses, at connection time, the addresses the
// server refuses, whatever name led there.
func TestGatewayClientRefusesAddresses(t *testing.T) {
	gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"rejected":[]}`)
	}))
	t.Cleanup(gw.Close)
	loopback := errors.New("loopback")
	refuse := func(a netip.Addr) error {
		if a.IsLoopback() {
			return loopback
		}
		return nil
	}
	_, err := NewGatewayClient(refuse, true).Post(gw.URL+"/_matrix/push/v1/notify", "application/json", nil)
	if !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("a loopback gateway: %v", err)
	}
	resp, err := NewGatewayClient(nil, true).Post(gw.URL+"/_matrix/push/v1/notify", "application/json", nil)
	if err != nil {
		t.Fatalf("with every address allowed: %v", err)
	}
	resp.Body.Close()
	// Without insecure_skip_verify, httptest's certificate is not trusted.
	if _, err := NewGatewayClient(nil, false).Post(gw.URL+"/_matrix/push/v1/notify", "application/json", nil); err == nil {
		t.Fatal("an unverifiable certificate was accepted")
	}
}

func TestBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 8 * time.Second} {
		if got := backoff(time.Second, 8*time.Second, failures); got != want {
			t.Errorf("backoff after %d failures: %v, want %v", failures, got, want)
		}
	}
}

// The room as the notifier sees it follows joins and leaves: members are
// notified while joined, and the one-to-one rule follows the count.
func TestNotifierFollowsMembership(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		st := newStack(t, db, nil)
		alice, bob, carol := "@alice:"+us, "@bob:"+us, "@carol:"+us
		roomID := st.room(alice)
		notification := func(user, eventID string) *storage.Notification {
			ns, err := db.Notifications(ctx, user, 0, 100, false)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ns {
				if ns[i].EventID == eventID {
					return &ns[i]
				}
			}
			return nil
		}
		join := func(u string) {
			st.send(roomID, st.event(u, "m.room.member", &u, map[string]any{"membership": "join"}))
		}
		leave := func(u string) {
			st.send(roomID, st.event(u, "m.room.member", &u, map[string]any{"membership": "leave"}))
		}
		join(bob)
		m1 := st.message(roomID, alice, "two of us")
		if n := notification(bob, m1); n == nil || !strings.Contains(string(n.Actions), "sound") {
			t.Fatalf("bob in a room of two: %+v", n)
		}
		join(carol)
		m2 := st.message(roomID, alice, "three of us")
		if n := notification(bob, m2); n == nil || strings.Contains(string(n.Actions), "sound") {
			t.Fatalf("bob in a room of three: %+v", n)
		}
		if notification(carol, m2) == nil {
			t.Fatal("carol, who joined, was not notified")
		}
		leave(bob)
		m3 := st.message(roomID, alice, "bob left")
		if notification(bob, m3) != nil {
			t.Fatal("bob, who left, was notified")
		}
		if n := notification(carol, m3); n == nil || !strings.Contains(string(n.Actions), "sound") {
			t.Fatalf("carol in a room of two again: %+v", n)
		}
	})
}
