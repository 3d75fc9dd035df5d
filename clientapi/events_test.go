package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestSendAndTransactionIDs(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	other := alice.createRoom(t, nil)

	msg := map[string]any{"msgtype": "m.text", "body": "hello"}
	id := alice.send(t, roomID, "txn1", msg)
	if !strings.HasPrefix(id, "$") {
		t.Fatalf("event ID %q", id)
	}
	// A replay returns the same event and writes nothing.
	before := streamPos(t, s)
	if again := alice.send(t, roomID, "txn1", msg); again != id {
		t.Errorf("replayed txn: %s, want %s", again, id)
	}
	if again := alice.send(t, roomID, "txn1", map[string]any{"body": "different"}); again != id {
		t.Errorf("replayed txn with another body: %s, want %s", again, id)
	}
	if after := streamPos(t, s); after != before {
		t.Errorf("replays moved the stream from %d to %d", before, after)
	}
	// The same transaction ID in another room, or from another device,
	// is another request.
	if x := alice.send(t, other, "txn1", msg); x == id {
		t.Error("same txn ID in another room returned the first room's event")
	}
	token2, _ := s.Login(t, alice.id)
	alice2 := &user{s: s, id: alice.id, token: token2}
	if x := alice2.send(t, roomID, "txn1", msg); x == id {
		t.Error("same txn ID from another device returned the first device's event")
	}

	// The event as the sender reads it, with its transaction ID.
	ev := alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(id), nil)
	if ev.Get("content.body").Str != "hello" || ev.Get("type").Str != "m.room.message" || ev.Get("sender").Str != alice.id ||
		ev.Get("room_id").Str != roomID || ev.Get("unsigned.transaction_id").Str != "txn1" || !ev.Get("unsigned.age").Exists() {
		t.Errorf("event %s", ev.Raw)
	}
	if ev := alice2.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(id), nil); ev.Get("unsigned.transaction_id").Exists() {
		t.Errorf("another device sees the transaction ID: %s", ev.Raw)
	}

	// The same transaction ID on /redact is another request (Synapse
	// keys transactions by request path): a redaction, idempotent too.
	redactPath := room(roomID) + "/redact/" + url.PathEscape(id) + "/txn1"
	rid := alice.ok(t, "PUT", redactPath, map[string]any{"reason": "same txn"}).Get("event_id").Str
	if rid == "" || rid == id {
		t.Fatalf("redaction with the message's transaction ID: %q (message %s)", rid, id)
	}
	if again := alice.ok(t, "PUT", redactPath, map[string]any{}).Get("event_id").Str; again != rid {
		t.Errorf("replayed redaction: %s, want %s", again, rid)
	}
	if ev := alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(id), nil); ev.Get("content.body").Exists() ||
		ev.Get("unsigned.redacted_because.event_id").Str != rid {
		t.Errorf("the message after the redaction: %s", ev.Raw)
	}
	// And /send still returns the message for its transaction.
	if again := alice.send(t, roomID, "txn1", msg); again != id {
		t.Errorf("replayed send after the redaction: %s, want %s", again, id)
	}
}

func TestStateEvents(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)

	// The empty state key, with and without the trailing slash.
	id1 := alice.ok(t, "PUT", room(roomID)+"/state/m.room.topic", map[string]any{"topic": "one"}).Get("event_id").Str
	if got := alice.state(t, roomID, "m.room.topic", "").Get("topic").Str; got != "one" {
		t.Errorf("topic %q", got)
	}
	if got := alice.ok(t, "GET", room(roomID)+"/state/m.room.topic", nil).Get("topic").Str; got != "one" {
		t.Errorf("topic without the slash %q", got)
	}
	// Setting the same content again changes nothing.
	if id2 := alice.ok(t, "PUT", room(roomID)+"/state/m.room.topic/", map[string]any{"topic": "one"}).Get("event_id").Str; id2 != id1 {
		t.Errorf("same state twice: %s then %s", id1, id2)
	}
	// A state key with a slash, escaped.
	alice.ok(t, "PUT", room(roomID)+"/state/com.example/a%2Fb", map[string]any{"v": 1})
	if got := alice.ok(t, "GET", room(roomID)+"/state/com.example/a%2Fb?format=event", nil); got.Get("state_key").Str != "a/b" || got.Get("content.v").Int() != 1 {
		t.Errorf("state with key a/b: %s", got.Raw)
	}

	// Bob (level 0) may not set state that needs 50.
	before := streamPos(t, s)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", room(roomID)+"/state/m.room.topic/", map[string]any{"topic": "mine"})
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", room(roomID)+"/state/m.room.power_levels/", map[string]any{})
	for _, c := range []struct {
		path   string
		body   any
		status int
		code   string
	}{
		{room(roomID) + "/state/m.room.topic/", `[]`, 400, "M_BAD_JSON"},
		{room(roomID) + "/state/m.room.topic/", `{`, 400, "M_NOT_JSON"},
		{room(roomID) + "/state/m.room.topic/", ``, 400, "M_NOT_JSON"},
		{room(roomID) + "/state/m.room.topic/", `{"topic": 1.5}`, 400, "M_BAD_JSON"},
		{room(roomID) + "/state/" + strings.Repeat("t", 256) + "/", map[string]any{}, 413, "M_TOO_LARGE"},
		{room(roomID) + "/state/m.x/" + strings.Repeat("k", 256), map[string]any{}, 413, "M_TOO_LARGE"},
		{room(roomID) + "/state/m.x/", map[string]any{"a": strings.Repeat("x", 65000)}, 413, "M_TOO_LARGE"},
		{room("!nope:"+s.Name) + "/state/m.room.topic/", map[string]any{"topic": "x"}, 404, "M_NOT_FOUND"},
		// A second create event: the auth rules refuse it (it has
		// prev_events); the room exists, so not 404.
		{room(roomID) + "/state/m.room.create/", map[string]any{"room_version": "11", "m.federate": false}, 403, "M_FORBIDDEN"},
		{room(roomID) + "/state/m.room.create/x", map[string]any{}, 403, "M_FORBIDDEN"},
		{room(roomID) + "/state/m.room.canonical_alias/", map[string]any{"alias": "not an alias"}, 400, "M_INVALID_PARAM"},
		{room(roomID) + "/state/m.room.canonical_alias/", map[string]any{"alias": "#missing:" + s.Name}, 400, "M_BAD_ALIAS"},
		{room(roomID) + "/state/m.room.canonical_alias/", map[string]any{"alt_aliases": "#x:y"}, 400, "M_INVALID_PARAM"},
	} {
		alice.fails(t, c.status, c.code, "PUT", c.path, c.body)
	}
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
	// A canonical alias that points here is accepted.
	alice.ok(t, "PUT", v3+"/directory/room/"+urlEscape("#here:"+s.Name), map[string]any{"room_id": roomID})
	alice.ok(t, "PUT", room(roomID)+"/state/m.room.canonical_alias/", map[string]any{"alias": "#here:" + s.Name})

	// Reads: unknown state is 404; the full event form; a stranger is 403.
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room(roomID)+"/state/m.room.avatar/", nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", room(roomID)+"/state/m.room.topic/?format=xml", nil)
	if ev := alice.ok(t, "GET", room(roomID)+"/state/m.room.topic/?format=event", nil); ev.Get("event_id").Str != id1 || ev.Get("state_key").Str != "" || ev.Get("content.topic").Str != "one" {
		t.Errorf("format=event: %s", ev.Raw)
	}
	stranger := newUser(t, s, "stranger")
	stranger.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/state", nil)
	stranger.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/state/m.room.topic/", nil)
	stranger.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room("!nope:"+s.Name)+"/state", nil)
}

func TestSendErrors(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, nil)
	send := room(roomID) + "/send/m.room.message/"
	before := streamPos(t, s)
	for i, c := range []struct {
		u      *user
		path   string
		body   any
		status int
		code   string
	}{
		{alice, send, `[]`, 400, "M_BAD_JSON"},
		{alice, send, `"text"`, 400, "M_BAD_JSON"},
		{alice, send, `{"body": `, 400, "M_NOT_JSON"},
		{alice, send, `{"a": 1, "a": 2}`, 400, "M_BAD_JSON"},
		{alice, send, `{"n": 9007199254740993}`, 400, "M_BAD_JSON"},
		{alice, send, map[string]any{"body": strings.Repeat("x", 65500)}, 413, "M_TOO_LARGE"},
		{alice, room(roomID) + "/send/" + strings.Repeat("t", 256) + "/", map[string]any{}, 413, "M_TOO_LARGE"},
		{alice, room("!nope:"+s.Name) + "/send/m.room.message/", map[string]any{"body": "x"}, 404, "M_NOT_FOUND"},
		{alice, room("nope") + "/send/m.room.message/", map[string]any{"body": "x"}, 400, "M_INVALID_PARAM"},
		{alice, room(roomID) + "/send/m.room.redaction/", map[string]any{}, 400, "M_BAD_JSON"},
		{bob, send, map[string]any{"body": "not a member"}, 403, "M_FORBIDDEN"},
	} {
		c.u.fails(t, c.status, c.code, "PUT", fmt.Sprintf("%st%d", c.path, i), c.body)
	}
	status, _ := s.Do(t, "PUT", send+"x", "", map[string]any{"body": "x"})
	if status != 401 {
		t.Errorf("no token: %d", status)
	}
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
}

func TestRedact(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	for _, ver := range []string{"10", "11"} {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "room_version": ver})
		bob.ok(t, "POST", room(roomID)+"/join", nil)
		mine := bob.send(t, roomID, "m1", map[string]any{"msgtype": "m.text", "body": "oops"})
		theirs := alice.send(t, roomID, "a1", map[string]any{"msgtype": "m.text", "body": "admin"})

		// Bob may redact his own event, not alice's.
		bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "PUT", room(roomID)+"/redact/"+url.PathEscape(theirs)+"/r0", map[string]any{})
		rid := bob.ok(t, "PUT", room(roomID)+"/redact/"+url.PathEscape(mine)+"/r1", map[string]any{"reason": "typo"}).Get("event_id").Str
		if again := bob.ok(t, "PUT", room(roomID)+"/redact/"+url.PathEscape(mine)+"/r1", map[string]any{"reason": "typo"}).Get("event_id").Str; again != rid {
			t.Errorf("v%s: replayed redaction %s, want %s", ver, again, rid)
		}
		ev := bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(mine), nil)
		if ev.Get("content.body").Exists() || ev.Get("unsigned.redacted_because.event_id").Str != rid {
			t.Errorf("v%s: redacted event %s", ver, ev.Raw)
		}
		red := bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(rid), nil)
		if red.Get("redacts").Str != mine || red.Get("content.reason").Str != "typo" {
			t.Errorf("v%s: redaction %s", ver, red.Raw)
		}
		// Alice (the admin) may redact bob's events, through /send too.
		other := bob.send(t, roomID, "m2", map[string]any{"msgtype": "m.text", "body": "more"})
		rid2 := alice.ok(t, "PUT", room(roomID)+"/send/m.room.redaction/r2", map[string]any{"redacts": other}).Get("event_id").Str
		red2 := alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(rid2), nil)
		if red2.Get("redacts").Str != other {
			t.Errorf("v%s: redaction through /send %s", ver, red2.Raw)
		}
		// Redacts sits in the content from v11 on, at the top before.
		if (ver == "11") != red2.Get("content.redacts").Exists() {
			t.Errorf("v%s: content of the redaction %s", ver, red2.Raw)
		}
		if ev := alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(other), nil); ev.Get("content.body").Exists() {
			t.Errorf("v%s: not redacted %s", ver, ev.Raw)
		}
		alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "PUT", room(roomID)+"/redact/notanevent/r3", map[string]any{})
		alice.fails(t, http.StatusBadRequest, "M_BAD_JSON", "PUT", room(roomID)+"/redact/"+url.PathEscape(other)+"/r4", map[string]any{"reason": 5})
	}
}

func TestGetEventVisibility(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "initial_state": []any{
		map[string]any{"type": "m.room.history_visibility", "content": map[string]string{"history_visibility": "joined"}},
	}})
	early := alice.send(t, roomID, "e1", map[string]any{"body": "before bob"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	late := alice.send(t, roomID, "e2", map[string]any{"body": "after bob"})

	bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(late), nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/event/"+url.PathEscape(early), nil)
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/event/"+url.PathEscape(late), nil)
	bob.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room(roomID)+"/event/$unknown", nil)
	// An event of another room, asked for under this room.
	otherRoom := alice.createRoom(t, nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room(otherRoom)+"/event/"+url.PathEscape(late), nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", room(roomID)+"/event/notanid", nil)

	// world_readable: anyone reads.
	alice.ok(t, "PUT", room(roomID)+"/state/m.room.history_visibility/", map[string]string{"history_visibility": "world_readable"})
	open := alice.send(t, roomID, "e3", map[string]any{"body": "for all"})
	carol.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(open), nil)
	carol.ok(t, "GET", room(roomID)+"/state", nil)
	carol.ok(t, "GET", room(roomID)+"/joined_members", nil)
}

// History visibility shared, through GET /event: a user who joined and
// left keeps what was sent while they were joined, and loses the history
// from before their join and what was sent after they left.
func TestGetEventSharedAfterLeaving(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"}) // shared
	before := alice.send(t, roomID, "s1", map[string]any{"body": "before bob"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	during := alice.send(t, roomID, "s2", map[string]any{"body": "with bob"})
	bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(before), nil)
	bob.ok(t, "POST", room(roomID)+"/leave", map[string]any{})
	after := alice.send(t, roomID, "s3", map[string]any{"body": "after bob"})

	bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(during), nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/event/"+url.PathEscape(before), nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/event/"+url.PathEscape(after), nil)
	// Joined again, all of the shared history is his.
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(before), nil)
	bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(after), nil)
}

func TestTimestampToEvent(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	// Sleeps keep the events in different milliseconds from each other
	// and from the times the test asks about.
	time.Sleep(5 * time.Millisecond)
	start := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	first := alice.send(t, roomID, "t1", map[string]any{"body": "1"})
	time.Sleep(5 * time.Millisecond)
	mid := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	second := alice.send(t, roomID, "t2", map[string]any{"body": "2"})
	const p = "/_matrix/client/v1/rooms/"
	path := func(ts int64, dir string) string {
		return p + url.PathEscape(roomID) + fmt.Sprintf("/timestamp_to_event?ts=%d&dir=%s", ts, dir)
	}

	if got := alice.ok(t, "GET", path(start, "f"), nil); got.Get("event_id").Str != first || got.Get("origin_server_ts").Int() < start {
		t.Errorf("forwards from start: %s (first %s)", got.Raw, first)
	}
	if got := alice.ok(t, "GET", path(mid, "f"), nil); got.Get("event_id").Str != second {
		t.Errorf("forwards from mid: %s (second %s)", got.Raw, second)
	}
	if got := alice.ok(t, "GET", path(mid, "b"), nil); got.Get("event_id").Str != first {
		t.Errorf("backwards from mid: %s (first %s)", got.Raw, first)
	}
	// Outside the room's range: nothing after its last event, nothing
	// before its first; from beyond either end, the end.
	future := time.Now().UnixMilli() + 60000
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", path(future, "f"), nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", path(1000, "b"), nil)
	if got := alice.ok(t, "GET", path(future, "b"), nil); got.Get("event_id").Str != second {
		t.Errorf("backwards from the future: %s (second %s)", got.Raw, second)
	}
	create := alice.ok(t, "GET", room(roomID)+"/state/m.room.create/?format=event", nil).Get("event_id").Str
	if got := alice.ok(t, "GET", path(1000, "f"), nil); got.Get("event_id").Str != create {
		t.Errorf("forwards from before the room: %s (create %s)", got.Raw, create)
	}
	// A user who left reads the room as it was when they left.
	bob := newUser(t, s, "bob")
	alice.ok(t, "POST", room(roomID)+"/invite", map[string]any{"user_id": bob.id})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	bob.ok(t, "POST", room(roomID)+"/leave", map[string]any{})
	time.Sleep(5 * time.Millisecond)
	afterLeave := alice.send(t, roomID, "t3", map[string]any{"body": "3"})
	if got := alice.ok(t, "GET", path(future, "b"), nil); got.Get("event_id").Str != afterLeave {
		t.Errorf("alice, backwards from the future: %s (last %s)", got.Raw, afterLeave)
	}
	bobLeave := bob.ok(t, "GET", room(roomID)+"/state/m.room.member/"+url.PathEscape(bob.id)+"?format=event", nil)
	if got := bob.ok(t, "GET", path(future, "b"), nil); got.Get("event_id").Str != bobLeave.Get("event_id").Str {
		t.Errorf("bob after leaving, backwards from the future: %s (his leave %s)", got.Raw, bobLeave.Raw)
	}
	bob.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", path(bobLeave.Get("origin_server_ts").Int()+1, "f"), nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", path(mid, "x"), nil)
	alice.fails(t, http.StatusBadRequest, "M_INVALID_PARAM", "GET", p+url.PathEscape(roomID)+"/timestamp_to_event?ts=abc&dir=f", nil)
	alice.fails(t, http.StatusBadRequest, "M_MISSING_PARAM", "GET", p+url.PathEscape(roomID)+"/timestamp_to_event?dir=f", nil)
	newUser(t, s, "carol").fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", path(mid, "f"), nil)
	alice.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", p+url.PathEscape("!nope:"+s.Name)+"/timestamp_to_event?ts=1&dir=f", nil)
}
