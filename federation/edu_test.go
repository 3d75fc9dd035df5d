package federation_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// ephemeralSync is the part of a /sync response the EDU tests read.
type ephemeralSync struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Ephemeral struct {
				Events []struct {
					Type    string          `json:"type"`
					Content json.RawMessage `json:"content"`
				} `json:"events"`
			} `json:"ephemeral"`
		} `json:"join"`
	} `json:"rooms"`
	Presence struct {
		Events []struct {
			Sender  string `json:"sender"`
			Content struct {
				Presence  string  `json:"presence"`
				StatusMsg *string `json:"status_msg"`
			} `json:"content"`
		} `json:"events"`
	} `json:"presence"`
}

// typing returns the room's m.typing user_ids in the response, with false
// when it has none.
func (r *ephemeralSync) typing(roomID string) ([]string, bool) {
	for _, ev := range r.Rooms.Join[roomID].Ephemeral.Events {
		if ev.Type == "m.typing" {
			var c struct {
				UserIDs []string `json:"user_ids"`
			}
			_ = json.Unmarshal(ev.Content, &c)
			return c.UserIDs, true
		}
	}
	return nil, false
}

// receiptData is one user's receipt as /sync shows it.
type receiptData struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id"`
}

// receipt returns userID's receipt of eventID of type typ in the room's
// m.receipt, if the response has one.
func (r *ephemeralSync) receipt(roomID, eventID, typ, userID string) (receiptData, bool) {
	for _, ev := range r.Rooms.Join[roomID].Ephemeral.Events {
		if ev.Type != "m.receipt" {
			continue
		}
		var c map[string]map[string]map[string]receiptData
		_ = json.Unmarshal(ev.Content, &c)
		if d, ok := c[eventID][typ][userID]; ok {
			return d, true
		}
	}
	return receiptData{}, false
}

// ephemeralSyncer follows one user's /sync.
type ephemeralSyncer struct {
	s     *servertest.Server
	token string
	since string
}

func newEphemeralSyncer(t *testing.T, s *servertest.Server, token string) *ephemeralSyncer {
	t.Helper()
	es := &ephemeralSyncer{s: s, token: token}
	es.poll(t, 0)
	return es
}

// poll makes one /sync request from where the last one ended. The user
// syncs as offline, so that its own presence stays out of the way.
func (es *ephemeralSyncer) poll(t *testing.T, timeout time.Duration) *ephemeralSync {
	t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeout.Milliseconds())}, "set_presence": {"offline"}}
	if es.since != "" {
		q.Set("since", es.since)
	}
	var resp ephemeralSync
	es.s.DoJSON(t, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), es.token, nil, &resp)
	es.since = resp.NextBatch
	return &resp
}

// until long-polls until cond holds for a response, and returns when it
// did.
func (es *ephemeralSyncer) until(t *testing.T, what string, cond func(*ephemeralSync) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond(es.poll(t, 5*time.Second)) {
			return time.Now()
		}
	}
	t.Fatalf("timed out waiting for %s", what)
	return time.Time{}
}

// roomPath is the client API path of the room's endpoint.
func roomPath(roomID, rest string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + rest
}

func setTyping(t *testing.T, s *servertest.Server, token, roomID, userID string, typing bool, timeout time.Duration) {
	t.Helper()
	body := map[string]any{"typing": typing}
	if typing {
		body["timeout"] = timeout.Milliseconds()
	}
	s.DoJSON(t, http.MethodPut, roomPath(roomID, "/typing/"+url.PathEscape(userID)), token, body, nil)
}

func postReceipt(t *testing.T, s *servertest.Server, token, roomID, typ, eventID string, body map[string]any) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	s.DoJSON(t, http.MethodPost, roomPath(roomID, "/receipt/"+typ+"/"+url.PathEscape(eventID)), token, body, nil)
}

// sharedRoom is alice's room on A that bob@B joined from B (a remote
// join through make_join/send_join), with bob's ID and token.
func sharedRoom(t *testing.T) (*roomOnA, string, string) {
	ro := newRoomOnA(t)
	bobID, bobToken := ro.b.RegisterUser(t, "bob")
	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(ro.alias), bobToken, map[string]any{}, nil)
	eventually(t, "bob's join on A", func() bool { return membershipOn(t, ro.a, ro.roomID, bobID) == "join" })
	return ro, bobID, bobToken
}

// Typing on A shows in bob's /sync on B and stops there when alice stops
// or when her typing's timeout passes on A; bob's typing on B shows on A.
func TestTypingBetweenServers(t *testing.T) {
	ro, bobID, bobToken := sharedRoom(t)
	alice := "@alice:" + ro.a.Name
	bobSync := newEphemeralSyncer(t, ro.b, bobToken)
	aliceSync := newEphemeralSyncer(t, ro.a, ro.token)
	typingIs := func(want ...string) func(*ephemeralSync) bool {
		return func(r *ephemeralSync) bool {
			users, ok := r.typing(ro.roomID)
			return ok && slices.Equal(users, append([]string{}, want...))
		}
	}

	start := time.Now()
	setTyping(t, ro.a, ro.token, ro.roomID, alice, true, 30*time.Second)
	at := bobSync.until(t, "alice typing in bob's sync on B", typingIs(alice))
	t.Logf("A→B typing, PUT /typing to bob's /sync: %v", at.Sub(start))
	setTyping(t, ro.a, ro.token, ro.roomID, alice, false, 0)
	bobSync.until(t, "alice's typing to stop in bob's sync", typingIs())

	// A timeout of one second: A tells B when it passes.
	start = time.Now()
	setTyping(t, ro.a, ro.token, ro.roomID, alice, true, time.Second)
	bobSync.until(t, "alice typing again", typingIs(alice))
	at = bobSync.until(t, "alice's typing to time out", typingIs())
	if d := at.Sub(start); d < time.Second {
		t.Errorf("typing with a 1 s timeout stopped on B after %v", d)
	}

	setTyping(t, ro.b, bobToken, ro.roomID, bobID, true, 30*time.Second)
	aliceSync.until(t, "bob typing in alice's sync on A", typingIs(bobID))
}

// Receipts on A, unthreaded and threaded, show in bob's /sync on B, and
// bob's on B in alice's on A; private receipts stay home.
func TestReceiptsBetweenServers(t *testing.T) {
	ro, bobID, bobToken := sharedRoom(t)
	alice := "@alice:" + ro.a.Name
	msg := ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "read me"})
	bobSync := newEphemeralSyncer(t, ro.b, bobToken)
	aliceSync := newEphemeralSyncer(t, ro.a, ro.token)

	postReceipt(t, ro.a, ro.token, ro.roomID, "m.read.private", msg, nil)
	start := time.Now()
	postReceipt(t, ro.a, ro.token, ro.roomID, "m.read", msg, nil)
	var got receiptData
	at := bobSync.until(t, "alice's receipt in bob's sync on B", func(r *ephemeralSync) bool {
		var ok bool
		got, ok = r.receipt(ro.roomID, msg, "m.read", alice)
		return ok && got.ThreadID == ""
	})
	t.Logf("A→B receipt, POST /receipt to bob's /sync: %v", at.Sub(start))
	if got.TS < start.Add(-time.Minute).UnixMilli() || got.TS > time.Now().UnixMilli() {
		t.Errorf("receipt ts %d, want about %d", got.TS, start.UnixMilli())
	}

	postReceipt(t, ro.a, ro.token, ro.roomID, "m.read", msg, map[string]any{"thread_id": "main"})
	bobSync.until(t, "alice's threaded receipt", func(r *ephemeralSync) bool {
		d, ok := r.receipt(ro.roomID, msg, "m.read", alice)
		return ok && d.ThreadID == "main"
	})

	postReceipt(t, ro.b, bobToken, ro.roomID, "m.read", msg, nil)
	aliceSync.until(t, "bob's receipt in alice's sync on A", func(r *ephemeralSync) bool {
		_, ok := r.receipt(ro.roomID, msg, "m.read", bobID)
		return ok
	})

	onB, err := ro.b.DB().ReceiptsAfter(ctxT(t), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range onB {
		if r.Type != "m.read" {
			t.Errorf("B holds a %s receipt of %s", r.Type, r.UserID)
		}
	}
	// Every receipt was delivered: nothing waits in A's queue (A deletes
	// a transaction's EDUs once B has answered it, which may be just
	// after bob's /sync shows them).
	eventually(t, "A's queue for B to empty", func() bool {
		n, err := ro.a.DB().QueuedEDUCount(ctxT(t), ro.b.Name)
		return err == nil && n == 0
	})
}

// Presence set before bob joins reaches the other server with the join,
// both ways; alice's changes after it reach bob's /sync on B.
func TestPresenceBetweenServers(t *testing.T) {
	ro := newRoomOnA(t)
	alice := "@alice:" + ro.a.Name
	bobID, bobToken := ro.b.RegisterUser(t, "bob")
	alicePath := "/_matrix/client/v3/presence/" + url.PathEscape(alice) + "/status"
	ro.a.DoJSON(t, http.MethodPut, alicePath, ro.token, map[string]any{"presence": "online", "status_msg": "lunch"}, nil)
	ro.b.DoJSON(t, http.MethodPut, "/_matrix/client/v3/presence/"+url.PathEscape(bobID)+"/status", bobToken,
		map[string]any{"presence": "unavailable"}, nil)
	aliceSync := newEphemeralSyncer(t, ro.a, ro.token)
	bobSync := newEphemeralSyncer(t, ro.b, bobToken)

	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(ro.alias), bobToken, map[string]any{}, nil)
	presenceIs := func(user, state, msg string) func(*ephemeralSync) bool {
		return func(r *ephemeralSync) bool {
			for _, ev := range r.Presence.Events {
				if ev.Sender == user && ev.Content.Presence == state &&
					(msg == "" && ev.Content.StatusMsg == nil || ev.Content.StatusMsg != nil && *ev.Content.StatusMsg == msg) {
					return true
				}
			}
			return false
		}
	}
	bobSync.until(t, "alice online in bob's sync on B after his join", presenceIs(alice, "online", "lunch"))
	aliceSync.until(t, "bob unavailable in alice's sync on A after his join", presenceIs(bobID, "unavailable", ""))

	start := time.Now()
	ro.a.DoJSON(t, http.MethodPut, alicePath, ro.token, map[string]any{"presence": "unavailable"}, nil)
	// A PUT without status_msg clears it.
	at := bobSync.until(t, "alice unavailable", presenceIs(alice, "unavailable", ""))
	t.Logf("A→B presence, PUT /presence to bob's /sync: %v", at.Sub(start))

	// B answers GET /presence for her from what A sent.
	var got struct {
		Presence string `json:"presence"`
	}
	ro.b.DoJSON(t, http.MethodGet, alicePath, bobToken, nil, &got)
	if got.Presence != "unavailable" {
		t.Errorf("B's GET /presence of alice: %q", got.Presence)
	}
}

// typingWatcher records the typing updates published on a server's bus.
type typingWatcher chan bus.TypingUpdate

func watchTyping(t *testing.T, s *servertest.Server) typingWatcher {
	t.Helper()
	w := make(typingWatcher, 100)
	sub, err := s.Bus().Conn().Subscribe(s.Bus().Subject(bus.TypingSubject), func(m *nats.Msg) {
		var u bus.TypingUpdate
		if json.Unmarshal(m.Data, &u) == nil {
			w <- u
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bus().Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

// next returns the next update, which must be user's.
func (w typingWatcher) next(t *testing.T, user string) bus.TypingUpdate {
	t.Helper()
	select {
	case u := <-w:
		if u.UserID != user {
			t.Fatalf("typing update of %s, want %s's (the ones before it ignored)", u.UserID, user)
		}
		return u
	case <-time.After(10 * time.Second):
		t.Fatalf("no typing update of %s", user)
	}
	return bus.TypingUpdate{}
}

func edu(typ string, content any) map[string]any {
	return map[string]any{"edu_type": typ, "content": content}
}

func typingEDU(roomID, userID string) map[string]any {
	return edu("m.typing", map[string]any{"room_id": roomID, "user_id": userID, "typing": true})
}

func receiptEDU(roomID, userID, eventID string) map[string]any {
	return edu("m.receipt", map[string]any{roomID: map[string]any{"m.read": map[string]any{
		userID: map[string]any{"event_ids": []string{eventID}, "data": map[string]any{"ts": 1234}}}}})
}

func presenceEDU(userID string) map[string]any {
	return edu("m.presence", map[string]any{"push": []any{map[string]any{
		"user_id": userID, "presence": "online", "last_active_ago": 10, "currently_active": true}}})
}

// eduTxn sends a transaction of EDUs only from A to B, signed by A, and
// checks it is answered 200.
func (ro *roomOnA) eduTxn(t *testing.T, edus ...map[string]any) {
	t.Helper()
	body := ro.txn()
	body["edus"] = edus
	if _, err := ro.sendTxn(t, fmt.Sprintf("edus%d", time.Now().UnixNano()), body); err != nil {
		t.Fatal(err)
	}
}

// receiptsOnB returns the users with a receipt on B in the room.
func receiptsOnB(t *testing.T, ro *roomOnA, roomID string) []string {
	t.Helper()
	rs, err := ro.b.DB().ReceiptsSince(ctxT(t), []string{roomID}, 0, 1<<60)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, r := range rs {
		users = append(users, r.UserID)
	}
	slices.Sort(users)
	return users
}

// A server speaks only for its own users, in rooms it shares: EDUs from A
// about B's user, about A's user who is not in the room, or about a room B
// is not in are ignored; the transaction is still answered 200.
func TestEDUsOnlyFromTheirUsersServer(t *testing.T) {
	ro, bobID, _ := sharedRoom(t)
	alice := "@alice:" + ro.a.Name
	mallory := "@mallory:" + ro.a.Name
	w := watchTyping(t, ro.b)
	ctx := ctxT(t)

	ro.eduTxn(t,
		typingEDU(ro.roomID, bobID),                  // B's user, claimed by A
		typingEDU(ro.roomID, mallory),                // A's user, not in the room
		typingEDU("!nowhere:"+ro.a.Name, alice),      // a room B is not in
		edu("m.typing", map[string]any{"typing": 1}), // malformed
		edu("m.unknown", map[string]any{}),           // nobody handles it
		receiptEDU(ro.roomID, bobID, ro.last),        // B's user's receipt
		receiptEDU("!nowhere:"+ro.a.Name, alice, ro.last),
		presenceEDU(bobID),
		presenceEDU(mallory), // shares no room with B's users
		typingEDU(ro.roomID, alice),
		receiptEDU(ro.roomID, alice, ro.last),
		presenceEDU(alice),
	)
	u := w.next(t, alice)
	if !u.Typing || u.RoomID != ro.roomID {
		t.Errorf("alice's typing update: %+v", u)
	}
	if d := time.Until(time.UnixMilli(u.DeadlineMS)); d < 50*time.Second || d > 61*time.Second {
		t.Errorf("a remote user's typing lasts %v, want a minute", d)
	}
	if got := receiptsOnB(t, ro, ro.roomID); !slices.Equal(got, []string{alice}) {
		t.Errorf("receipts on B: %v, want alice's only", got)
	}
	if got := receiptsOnB(t, ro, "!nowhere:"+ro.a.Name); len(got) != 0 {
		t.Errorf("receipts on B for a room it is not in: %v", got)
	}
	for user, want := range map[string]bool{alice: true, bobID: false, mallory: false} {
		p, err := ro.b.DB().GetPresence(ctx, user)
		if want != (err == nil) {
			t.Errorf("presence of %s on B: %+v, %v", user, p, err)
		}
		if want && (p.State != "online" || p.RemoteTS == 0) {
			t.Errorf("presence of %s on B: %+v", user, p)
		}
	}
}

// A room's server ACL applies to EDUs: with A denied in one room, A's
// typing and receipts there are ignored, while the same in another room
// are applied.
func TestEDUsFromServerDeniedByACLAreIgnored(t *testing.T) {
	ro := newRoomOnA(t)
	// A is an IP literal: denied once they are.
	ro.send(t, "m.room.server_acl", new(""), map[string]any{"allow": []string{"*"}, "allow_ip_literals": false})
	ro.shareWithB(t)
	open := &roomOnA{a: ro.a, b: ro.b, token: ro.token}
	var created struct {
		RoomID string `json:"room_id"`
	}
	ro.a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", ro.token, map[string]any{"preset": "public_chat"}, &created)
	open.roomID = created.RoomID
	open.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "hi"})
	open.shareWithB(t)
	alice := "@alice:" + ro.a.Name
	w := watchTyping(t, ro.b)

	ro.eduTxn(t,
		typingEDU(ro.roomID, alice),
		receiptEDU(ro.roomID, alice, ro.last),
		typingEDU(open.roomID, alice),
		receiptEDU(open.roomID, alice, open.last),
	)
	if u := w.next(t, alice); u.RoomID != open.roomID {
		t.Errorf("typing applied in %s, the room whose ACL denies A", u.RoomID)
	}
	if got := receiptsOnB(t, ro, ro.roomID); len(got) != 0 {
		t.Errorf("receipts on B in the room whose ACL denies A: %v", got)
	}
	if got := receiptsOnB(t, ro, open.roomID); !slices.Equal(got, []string{alice}) {
		t.Errorf("receipts on B in the other room: %v", got)
	}
}
