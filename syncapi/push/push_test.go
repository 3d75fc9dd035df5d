package push_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/server"
	"github.com/myelin-chat/myelin/internal/servertest"
)

const v3 = "/_matrix/client/v3"

// gateway is a push gateway stood up by the test: it records every
// /notify body and answers with what respond says.
type gateway struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []gjson.Result
	// respond returns the status and body of the nth request (0-based);
	// nil: 200 {"rejected":[]}.
	respond func(n int, body gjson.Result) (int, string)
	arrived chan struct{}
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{arrived: make(chan struct{}, 1000)}
	g.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/_matrix/push/v1/notify" {
			http.Error(w, `{"errcode":"M_UNRECOGNIZED"}`, http.StatusNotFound)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		body := gjson.ParseBytes(raw)
		g.mu.Lock()
		n := len(g.got)
		g.got = append(g.got, body)
		respond := g.respond
		g.mu.Unlock()
		status, out := http.StatusOK, `{"rejected":[]}`
		if respond != nil {
			status, out = respond(n, body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
		g.arrived <- struct{}{}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) url() string { return g.srv.URL + "/_matrix/push/v1/notify" }

func (g *gateway) requests() []gjson.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gjson.Result(nil), g.got...)
}

// waitEvent waits for a request about eventID and returns it (the last
// one, after retries).
func (g *gateway) waitEvent(t *testing.T, eventID string) gjson.Result {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		for _, r := range g.requests() {
			if r.Get("notification.event_id").Str == eventID {
				return r
			}
		}
		select {
		case <-g.arrived:
		case <-deadline:
			t.Fatalf("the gateway got no push for %s; it got %d requests", eventID, len(g.requests()))
		}
	}
}

// pushed reports whether any request was about eventID.
func (g *gateway) pushed(eventID string) bool {
	for _, r := range g.requests() {
		if r.Get("notification.event_id").Str == eventID {
			return true
		}
	}
	return false
}

func startServer(t *testing.T) *servertest.Server {
	return servertest.Start(t, 1,
		servertest.WithConfig(func(_ int, cfg *config.Config) {
			cfg.PushAllowPrivateAddresses = true // the gateway is on 127.0.0.1
			cfg.PushInsecureSkipVerify = true    // with httptest's certificate
		}),
		servertest.WithServerOptions(server.WithPushBackoff(100*time.Millisecond, 400*time.Millisecond)),
	)[0]
}

type user struct {
	s     *servertest.Server
	id    string
	token string
}

func newUser(t *testing.T, s *servertest.Server, name string) *user {
	id, token := s.RegisterUser(t, name)
	return &user{s: s, id: id, token: token}
}

func (u *user) ok(t *testing.T, method, path string, body any) gjson.Result {
	t.Helper()
	status, raw := u.s.Do(t, method, path, u.token, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s as %s: %d %s", method, path, u.id, status, raw)
	}
	return gjson.ParseBytes(raw)
}

var txn atomic.Int64

func (u *user) send(t *testing.T, roomID string, content map[string]any) string {
	t.Helper()
	path := v3 + "/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/t" + strconv.FormatInt(txn.Add(1), 10)
	return u.ok(t, "PUT", path, content).Get("event_id").Str
}

func text(body string) map[string]any { return map[string]any{"msgtype": "m.text", "body": body} }

func (u *user) setPusher(t *testing.T, g *gateway, pushkey string, data map[string]any) {
	t.Helper()
	data["url"] = g.url()
	u.ok(t, "POST", v3+"/pushers/set", map[string]any{
		"kind": "http", "app_id": "org.example.app", "pushkey": pushkey, "app_display_name": "Example",
		"device_display_name": "Phone", "lang": "en", "data": data,
	})
}

// The gateway gets the right notifications: an invite, a DM, a mention, a
// keyword; none for a muted room or the user's own messages; the
// event_id_only format carries only what the spec says.
func TestPushNotifications(t *testing.T) {
	s := startServer(t)
	g := newGateway(t)
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	bob.setPusher(t, g, "bob-phone", map[string]any{"custom": "kept"})
	carol.setPusher(t, g, "carol-phone", map[string]any{"format": "event_id_only"})

	// An invite to a DM.
	dm := alice.ok(t, "POST", v3+"/createRoom", map[string]any{"preset": "trusted_private_chat", "invite": []string{bob.id}, "is_direct": true}).Get("room_id").Str
	var invite gjson.Result
	deadline := time.Now().Add(15 * time.Second)
	for !invite.Exists() {
		for _, r := range g.requests() {
			if r.Get("notification.type").Str == "m.room.member" && r.Get("notification.room_id").Str == dm {
				invite = r
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no push for the invite")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := invite.Get("notification")
	if !n.Get("user_is_target").Bool() || n.Get("sender").Str != alice.id || n.Get("devices.0.tweaks.sound").Str != "default" ||
		n.Get("devices.0.pushkey").Str != "bob-phone" {
		t.Errorf("invite push: %s", n.Raw)
	}
	bob.ok(t, "POST", v3+"/rooms/"+url.PathEscape(dm)+"/join", map[string]any{})

	// A message in the DM: .m.rule.room_one_to_one, with the event.
	hi := alice.send(t, dm, text("hi bob"))
	n = g.waitEvent(t, hi).Get("notification")
	dev := n.Get("devices.0")
	if n.Get("room_id").Str != dm || n.Get("type").Str != "m.room.message" || n.Get("content.body").Str != "hi bob" ||
		n.Get("sender_display_name").Str != "alice" || n.Get("prio").Str != "high" || n.Get("counts.unread").Int() != 1 ||
		dev.Get("app_id").Str != "org.example.app" || dev.Get("tweaks.sound").Str != "default" ||
		dev.Get("data.custom").Str != "kept" || dev.Get("data.url").Exists() || dev.Get("pushkey_ts").Int() < 1e9 ||
		dev.Get("pushkey_ts").Int() > 1e11 {
		t.Errorf("DM push: %s", n.Raw)
	}

	// A group room of three.
	group := alice.ok(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat", "name": "Lunch"}).Get("room_id").Str
	bob.ok(t, "POST", v3+"/rooms/"+url.PathEscape(group)+"/join", map[string]any{})
	carol.ok(t, "POST", v3+"/rooms/"+url.PathEscape(group)+"/join", map[string]any{})

	mention := alice.send(t, group, map[string]any{"msgtype": "m.text", "body": "bob?", "m.mentions": map[string]any{"user_ids": []string{bob.id}}})
	n = findFor(t, g, mention, "bob-phone")
	if !n.Get("devices.0.tweaks.highlight").Bool() || n.Get("room_name").Str != "Lunch" || n.Get("prio").Str != "high" {
		t.Errorf("mention push: %s", n.Raw)
	}
	// carol's push for it: event_id_only.
	c := findFor(t, g, mention, "carol-phone")
	if c.Get("event_id").Str != mention || c.Get("room_id").Str != group || c.Get("content").Exists() || c.Get("sender").Exists() ||
		c.Get("type").Exists() || c.Get("devices.0.data.format").Str != "event_id_only" || c.Get("counts.unread").Int() < 1 {
		t.Errorf("event_id_only push: %s", c.Raw)
	}

	// A keyword with a sound of its own.
	bob.ok(t, "PUT", v3+"/pushrules/global/content/cake", map[string]any{"pattern": "cake",
		"actions": []any{"notify", map[string]any{"set_tweak": "sound", "value": "cake.wav"}}})
	cake := alice.send(t, group, text("Cake in the kitchen"))
	if n := findFor(t, g, cake, "bob-phone"); n.Get("devices.0.tweaks.sound").Str != "cake.wav" {
		t.Errorf("keyword push: %s", n.Raw)
	}

	// bob's own message: nothing about it to him (carol gets it).
	own := bob.send(t, group, text("thanks"))
	findFor(t, g, own, "carol-phone")

	// The muted room: nothing for bob; carol still gets hers.
	bob.ok(t, "PUT", v3+"/pushrules/global/room/"+url.PathEscape(group), map[string]any{"actions": []any{}})
	muted := alice.send(t, group, text("into the void"))
	findFor(t, g, muted, "carol-phone")
	// A later push to bob proves the muted message went by before it.
	later := alice.send(t, dm, text("still there?"))
	findFor(t, g, later, "bob-phone")
	for _, r := range g.requests() {
		id, key := r.Get("notification.event_id").Str, r.Get("notification.devices.0.pushkey").Str
		if key == "bob-phone" && (id == own || id == muted) {
			t.Errorf("bob was pushed %s: %s", id, r.Raw)
		}
	}
}

// findFor waits for the push of eventID to pushkey and returns its
// notification.
func findFor(t *testing.T, g *gateway, eventID, pushkey string) gjson.Result {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range g.requests() {
			n := r.Get("notification")
			if n.Get("event_id").Str == eventID && n.Get("devices.0.pushkey").Str == pushkey {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push of %s to %s", eventID, pushkey)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A gateway that fails is retried with backoff until it answers; a
// gateway that rejects the pushkey gets the pusher deleted.
func TestPushRetriesAndRejection(t *testing.T) {
	s := startServer(t)
	g := newGateway(t)
	var failFor atomic.Int64
	failFor.Store(2)
	var rejectNext atomic.Bool
	var times []time.Time
	var mu sync.Mutex
	g.respond = func(n int, body gjson.Result) (int, string) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if body.Get("notification.event_id").Str == "" {
			return http.StatusOK, `{"rejected":[]}` // count updates
		}
		if failFor.Add(-1) >= 0 {
			return http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"down"}`
		}
		if rejectNext.Load() {
			return http.StatusOK, `{"rejected":["bob-phone"]}`
		}
		return http.StatusOK, `{"rejected":[]}`
	}
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.ok(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}).Get("room_id").Str
	bob.ok(t, "POST", v3+"/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{})
	bob.setPusher(t, g, "bob-phone", map[string]any{})

	start := time.Now()
	first := alice.send(t, roomID, text("are you there?"))
	deadline := time.Now().Add(15 * time.Second)
	for count(g, first) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the push was tried %d times, want 3 (two 500s, then 200)", count(g, first))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Two failures: at least 100 ms, then 200 ms of backoff.
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("three tries in %v: no backoff", took)
	}
	time.Sleep(300 * time.Millisecond)
	if n := count(g, first); n != 3 {
		t.Errorf("delivered push tried %d times", n)
	}

	// The gateway rejects the pushkey: the pusher goes.
	rejectNext.Store(true)
	second := alice.send(t, roomID, text("hello?"))
	g.waitEvent(t, second)
	deadline = time.Now().Add(15 * time.Second)
	for bob.ok(t, "GET", v3+"/pushers", nil).Get("pushers.#").Int() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rejected pusher was not deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	third := alice.send(t, roomID, text("anyone?"))
	time.Sleep(500 * time.Millisecond)
	if g.pushed(third) {
		t.Error("pushed to a deleted pusher")
	}
}

func count(g *gateway, eventID string) int {
	n := 0
	for _, r := range g.requests() {
		if r.Get("notification.event_id").Str == eventID {
			n++
		}
	}
	return n
}

// A pushkey's count goes to the gateway when the user reads.
func TestPushCountUpdateOnRead(t *testing.T) {
	s := startServer(t)
	g := newGateway(t)
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.ok(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}).Get("room_id").Str
	bob.ok(t, "POST", v3+"/rooms/"+url.PathEscape(roomID)+"/join", map[string]any{})
	bob.setPusher(t, g, "bob-phone", map[string]any{})
	msg := alice.send(t, roomID, text("read me"))
	if n := g.waitEvent(t, msg).Get("notification.counts.unread").Int(); n != 1 {
		t.Fatalf("unread with the push: %d", n)
	}
	before := len(g.requests())
	bob.ok(t, "POST", v3+"/rooms/"+url.PathEscape(roomID)+"/receipt/m.read/"+url.PathEscape(msg), map[string]any{})
	deadline := time.Now().Add(15 * time.Second)
	for {
		reqs := g.requests()
		if len(reqs) > before {
			n := reqs[len(reqs)-1].Get("notification")
			if n.Get("event_id").Exists() || n.Get("counts.unread").Exists() || n.Get("devices.0.pushkey").Str != "bob-phone" {
				t.Fatalf("count update: %s", n.Raw)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no count update after the receipt")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
