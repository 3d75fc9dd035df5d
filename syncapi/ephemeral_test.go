package syncapi_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// waitSync runs an incremental sync in the background and returns a
// channel with its result and when it arrived.
func (u *user) waitSync(t *testing.T, since string) <-chan timedSync {
	ch := make(chan timedSync, 1)
	go func() {
		res := u.sync(t, params("since", since, "timeout", "20000"))
		ch <- timedSync{res, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond) // let it reach the notifier
	return ch
}

type timedSync struct {
	res gjson.Result
	at  time.Time
}

func receive(t *testing.T, ch <-chan timedSync, what string) timedSync {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("no sync response for %s", what)
		return timedSync{}
	}
}

func ephemeral(res gjson.Result, roomID, evType string) gjson.Result {
	var out gjson.Result
	joinedRoom(res, roomID).Get("ephemeral.events").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("type").Str == evType {
			out = ev
		}
		return true
	})
	return out
}

func TestTyping(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, eve := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "eve")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	since := bob.sync(t, quiet).Get("next_batch").Str
	typingPath := room(roomID) + "/typing/" + url.PathEscape(alice.id)

	// Typing wakes a waiting sync.
	ch := bob.waitSync(t, since)
	start := time.Now()
	alice.ok(t, "PUT", typingPath, map[string]any{"typing": true, "timeout": 1500})
	r := receive(t, ch, "typing")
	users := ephemeral(r.res, roomID, "m.typing").Get("content.user_ids").Array()
	if len(users) != 1 || users[0].Str != alice.id {
		t.Fatalf("typing users %v: %s", users, r.res.Raw)
	}
	t.Logf("typing reached the long-poll in %v", r.at.Sub(start))
	since = r.res.Get("next_batch").Str

	// The timeout ends it, and the end wakes the sync too.
	ch = bob.waitSync(t, since)
	r = receive(t, ch, "typing timeout")
	if got := ephemeral(r.res, roomID, "m.typing"); !got.Exists() || len(got.Get("content.user_ids").Array()) != 0 {
		t.Fatalf("after the timeout: %s", r.res.Raw)
	}
	if d := r.at.Sub(start); d < time.Second || d > 5*time.Second {
		t.Errorf("typing ended after %v, want about 1.5s", d)
	}
	since = r.res.Get("next_batch").Str

	// typing false ends it at once.
	alice.ok(t, "PUT", typingPath, map[string]any{"typing": true, "timeout": 30000})
	alice.ok(t, "PUT", typingPath, map[string]any{"typing": false})
	res := bob.sync(t, params("since", since))
	if got := ephemeral(res, roomID, "m.typing"); len(got.Get("content.user_ids").Array()) != 0 {
		t.Errorf("typing false left %s", got.Raw)
	}
	// The initial sync shows who is typing now.
	alice.ok(t, "PUT", typingPath, map[string]any{"typing": true})
	if got := ephemeral(bob.sync(t, quiet), roomID, "m.typing"); len(got.Get("content.user_ids").Array()) != 1 {
		t.Errorf("initial sync typing %s", got.Raw)
	}
	// Ephemeral filters apply to the typing users too.
	if got := ephemeral(bob.sync(t, params("filter", `{"room":{"ephemeral":{"not_senders":["`+alice.id+`"]}}}`)), roomID, "m.typing"); len(got.Get("content.user_ids").Array()) != 0 {
		t.Errorf("not_senders left %s", got.Raw)
	}
	// A filter without m.typing leaves it out.
	if ephemeral(bob.sync(t, params("filter", `{"room":{"ephemeral":{"not_types":["m.typing"]}}}`)), roomID, "m.typing").Exists() {
		t.Error("ephemeral filter ignored")
	}

	alice.fails(t, 403, "M_FORBIDDEN", "PUT", room(roomID)+"/typing/"+url.PathEscape(bob.id), map[string]any{"typing": true})
	eve.fails(t, 403, "M_FORBIDDEN", "PUT", room(roomID)+"/typing/"+url.PathEscape(eve.id), map[string]any{"typing": true})
	alice.fails(t, 400, "M_MISSING_PARAM", "PUT", typingPath, map[string]any{"timeout": 10})
	alice.fails(t, 400, "M_BAD_JSON", "PUT", typingPath, map[string]any{"typing": "yes"})
	alice.fails(t, 400, "M_NOT_JSON", "PUT", typingPath, "{")
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", typingPath, map[string]any{"typing": true, "timeout": -1})
}

func TestReceipts(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, eve := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "eve")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	e1 := alice.send(t, roomID, "one")
	e2 := alice.send(t, roomID, "two")
	since := alice.sync(t, quiet).Get("next_batch").Str
	receipt := func(typ, ev string) string { return room(roomID) + "/receipt/" + typ + "/" + url.PathEscape(ev) }

	// A read receipt wakes the other user's sync.
	ch := alice.waitSync(t, since)
	start := time.Now()
	bob.ok(t, "POST", receipt("m.read", e2), map[string]any{})
	r := receive(t, ch, "receipt")
	rc := ephemeral(r.res, roomID, "m.receipt")
	if !rc.Get("content." + esc(e2) + ".m\\.read." + esc(bob.id) + ".ts").Exists() {
		t.Fatalf("receipt missing: %s", r.res.Raw)
	}
	t.Logf("receipt reached the long-poll in %v", r.at.Sub(start))
	since = r.res.Get("next_batch").Str

	// Private receipts reach only their sender; threaded ones carry thread_id.
	bob.ok(t, "POST", receipt("m.read.private", e2), map[string]any{})
	bob.ok(t, "POST", receipt("m.read", e1), map[string]any{"thread_id": "main"})
	res := alice.sync(t, params("since", since))
	rc = ephemeral(res, roomID, "m.receipt")
	if rc.Get("content." + esc(e2) + ".m\\.read\\.private").Exists() {
		t.Errorf("another user's private receipt was sent: %s", rc.Raw)
	}
	if rc.Get("content."+esc(e1)+".m\\.read."+esc(bob.id)+".thread_id").Str != "main" {
		t.Errorf("threaded receipt: %s", rc.Raw)
	}
	own := ephemeral(bob.sync(t, quiet), roomID, "m.receipt")
	if !own.Get("content." + esc(e2) + ".m\\.read\\.private." + esc(bob.id)).Exists() {
		t.Errorf("own private receipt missing: %s", own.Raw)
	}

	// An unthreaded receipt never moves back.
	bob.ok(t, "POST", receipt("m.read", e1), map[string]any{})
	initial := ephemeral(alice.sync(t, quiet), roomID, "m.receipt")
	if !initial.Get("content."+esc(e2)+".m\\.read."+esc(bob.id)).Exists() || initial.Get("content."+esc(e1)+".m\\.read."+esc(bob.id)+".thread_id").Str != "main" {
		t.Errorf("receipts after an older one: %s", initial.Raw)
	}

	// Read markers: m.fully_read as room account data, m.read as a receipt.
	since = alice.sync(t, quiet).Get("next_batch").Str
	e3 := alice.send(t, roomID, "three")
	bob.ok(t, "POST", room(roomID)+"/read_markers", map[string]any{"m.fully_read": e3, "m.read": e3})
	res = bob.sync(t, quiet)
	var fullyRead string
	joinedRoom(res, roomID).Get("account_data.events").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("type").Str == "m.fully_read" {
			fullyRead = ev.Get("content.event_id").Str
		}
		return true
	})
	if fullyRead != e3 {
		t.Errorf("m.fully_read %q, want %s", fullyRead, e3)
	}
	if !ephemeral(alice.sync(t, params("since", since)), roomID, "m.receipt").Get("content." + esc(e3)).Exists() {
		t.Error("m.read from read_markers missing")
	}
	// m.fully_read through the receipt endpoint, and never backwards.
	bob.ok(t, "POST", receipt("m.fully_read", e1), map[string]any{})
	got := bob.ok(t, "GET", v3+"/user/"+url.PathEscape(bob.id)+"/rooms/"+url.PathEscape(roomID)+"/account_data/m.fully_read", nil)
	if got.Get("event_id").Str != e3 {
		t.Errorf("m.fully_read moved back to %s", got.Raw)
	}

	bob.fails(t, 400, "M_INVALID_PARAM", "POST", receipt("m.unknown", e1), map[string]any{})
	bob.fails(t, 400, "M_INVALID_PARAM", "POST", receipt("m.read", e1), map[string]any{"thread_id": ""})
	bob.fails(t, 400, "M_INVALID_PARAM", "POST", receipt("m.read", e1), map[string]any{"thread_id": 5})
	bob.fails(t, 400, "M_INVALID_PARAM", "POST", receipt("m.fully_read", e1), map[string]any{"thread_id": "main"})
	bob.fails(t, 404, "M_NOT_FOUND", "POST", receipt("m.read", "$nope"), map[string]any{})
	bob.fails(t, 400, "M_INVALID_PARAM", "POST", receipt("m.read", "nope"), map[string]any{})
	eve.fails(t, 403, "M_FORBIDDEN", "POST", receipt("m.read", e1), map[string]any{})
	bob.fails(t, 400, "M_BAD_JSON", "POST", room(roomID)+"/read_markers", map[string]any{"m.fully_read": 7})
	bob.fails(t, 404, "M_NOT_FOUND", "POST", room(roomID)+"/read_markers", map[string]any{"m.fully_read": "$nope"})
	bob.fails(t, 400, "M_NOT_JSON", "POST", room(roomID)+"/read_markers", "nope")
}

func TestPresence(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, eve := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "eve")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	since := bob.sync(t, quiet).Get("next_batch").Str
	status := v3 + "/presence/" + url.PathEscape(alice.id) + "/status"

	ch := bob.waitSync(t, since)
	alice.ok(t, "PUT", status, map[string]any{"presence": "unavailable", "status_msg": "lunch"})
	r := receive(t, ch, "presence")
	var found gjson.Result
	r.res.Get("presence.events").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("sender").Str == alice.id {
			found = ev
		}
		return true
	})
	if found.Get("type").Str != "m.presence" || found.Get("content.presence").Str != "unavailable" || found.Get("content.status_msg").Str != "lunch" {
		t.Fatalf("presence event %s in %s", found.Raw, r.res.Raw)
	}
	got := bob.ok(t, "GET", status, nil)
	if got.Get("presence").Str != "unavailable" || got.Get("status_msg").Str != "lunch" {
		t.Errorf("GET presence %s", got.Raw)
	}
	eve.fails(t, 403, "M_FORBIDDEN", "GET", status, nil)
	// A sync with set_presence=online makes the user online.
	alice.sync(t, url.Values{"set_presence": {"online"}})
	deadline := time.Now().Add(5 * time.Second)
	for bob.ok(t, "GET", status, nil).Get("presence").Str != "online" {
		if time.Now().After(deadline) {
			t.Fatal("set_presence=online did not make alice online")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Presence filter.
	if bob.sync(t, params("filter", `{"presence":{"not_types":["m.presence"]}}`)).Get("presence").Exists() {
		t.Error("presence filter ignored")
	}

	alice.fails(t, 403, "M_FORBIDDEN", "PUT", v3+"/presence/"+url.PathEscape(bob.id)+"/status", map[string]any{"presence": "online"})
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", status, map[string]any{"presence": "busy"})
	alice.fails(t, 400, "M_MISSING_PARAM", "PUT", status, map[string]any{"status_msg": "x"})
	alice.fails(t, 400, "M_BAD_JSON", "PUT", status, map[string]any{"presence": "online", "status_msg": 3})
}

func TestAccountData(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, nil)
	since := alice.sync(t, quiet).Get("next_batch").Str
	global := v3 + "/user/" + url.PathEscape(alice.id) + "/account_data/org.example.pref"
	inRoom := v3 + "/user/" + url.PathEscape(alice.id) + "/rooms/" + url.PathEscape(roomID) + "/account_data/org.example.pref"

	ch := alice.waitSync(t, since)
	alice.ok(t, "PUT", global, map[string]any{"theme": "dark"})
	r := receive(t, ch, "account data")
	if got := r.res.Get("account_data.events.#(type==\"org.example.pref\").content.theme").Str; got != "dark" {
		t.Fatalf("global account data in sync: %s", r.res.Raw)
	}
	alice.ok(t, "PUT", inRoom, map[string]any{"pinned": true})
	res := alice.sync(t, params("since", r.res.Get("next_batch").Str))
	if !joinedRoom(res, roomID).Get("account_data.events.#(type==\"org.example.pref\").content.pinned").Bool() {
		t.Errorf("room account data in sync: %s", res.Raw)
	}
	if alice.ok(t, "GET", global, nil).Get("theme").Str != "dark" || !alice.ok(t, "GET", inRoom, nil).Get("pinned").Bool() {
		t.Error("GET account data")
	}
	// Global and room data do not mix.
	alice.fails(t, 404, "M_NOT_FOUND", "GET", v3+"/user/"+url.PathEscape(alice.id)+"/account_data/org.example.none", nil)

	// Filters apply.
	if alice.sync(t, params("filter", `{"account_data":{"not_types":["org.example.*"]}}`)).Get("account_data.events.#(type==\"org.example.pref\")").Exists() {
		t.Error("account_data filter ignored")
	}

	bob.fails(t, 403, "M_FORBIDDEN", "PUT", global, map[string]any{})
	bob.fails(t, 403, "M_FORBIDDEN", "GET", global, nil)
	for _, typ := range []string{"m.fully_read", "m.push_rules"} {
		alice.fails(t, 405, "M_BAD_JSON", "PUT", v3+"/user/"+url.PathEscape(alice.id)+"/account_data/"+typ, map[string]any{})
		alice.fails(t, 405, "M_BAD_JSON", "PUT", v3+"/user/"+url.PathEscape(alice.id)+"/rooms/"+url.PathEscape(roomID)+"/account_data/"+typ, map[string]any{})
	}
	alice.fails(t, 400, "M_BAD_JSON", "PUT", global, []int{1})
	alice.fails(t, 400, "M_NOT_JSON", "PUT", global, "{")
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", v3+"/user/"+url.PathEscape(alice.id)+"/rooms/not-a-room/account_data/x", map[string]any{})
}

func TestTags(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, nil)
	tags := v3 + "/user/" + url.PathEscape(alice.id) + "/rooms/" + url.PathEscape(roomID) + "/tags"
	alice.ok(t, "PUT", tags+"/m.favourite", map[string]any{"order": 0.25})
	alice.ok(t, "PUT", tags+"/u.work", map[string]any{})
	got := alice.ok(t, "GET", tags, nil)
	if got.Get("tags.m\\.favourite.order").Float() != 0.25 || !got.Get("tags.u\\.work").Exists() {
		t.Fatalf("tags %s", got.Raw)
	}
	alice.ok(t, "DELETE", tags+"/u.work", nil)
	alice.ok(t, "DELETE", tags+"/u.never", nil)
	res := alice.sync(t, quiet)
	tag := joinedRoom(res, roomID).Get("account_data.events.#(type==\"m.tag\").content.tags")
	if !tag.Get("m\\.favourite").Exists() || tag.Get("u\\.work").Exists() {
		t.Errorf("m.tag in sync: %s", tag.Raw)
	}
	bob.fails(t, 403, "M_FORBIDDEN", "GET", tags, nil)
	bob.fails(t, 403, "M_FORBIDDEN", "PUT", tags+"/x", map[string]any{})
	alice.fails(t, 400, "M_BAD_JSON", "PUT", tags+"/x", map[string]any{"order": "first"})
	alice.fails(t, 400, "M_INVALID_PARAM", "PUT", tags+"/"+string(make([]byte, 0))+url.PathEscape(string(slices.Repeat([]byte("x"), 256))), map[string]any{})
}

func TestIgnoredUsers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	alice.ok(t, "PUT", v3+"/user/"+url.PathEscape(alice.id)+"/account_data/m.ignored_user_list",
		map[string]any{"ignored_users": map[string]any{bob.id: map[string]any{}}})
	since := alice.sync(t, quiet).Get("next_batch").Str
	hidden := bob.send(t, roomID, "you cannot see me")
	topic := bob.setState(t, roomID, "m.room.member", bob.id, map[string]any{"membership": "join", "displayname": "still seen"})
	res := alice.sync(t, params("since", since))
	ids := timelineIDs(res, "join", roomID)
	if slices.Contains(ids, hidden) || !slices.Contains(ids, topic) {
		t.Errorf("timeline %v: want the ignored user's state event %s, not their message %s", ids, topic, hidden)
	}
	if slices.Contains(alice.paginate(t, roomID, "b", "", 50, ""), hidden) {
		t.Error("/messages shows an ignored user's message")
	}
	// Invites from ignored users are not shown.
	other := bob.createRoom(t, nil)
	bob.invite(t, other, alice.id)
	if alice.sync(t, quiet).Get("rooms.invite." + esc(other)).Exists() {
		t.Error("invite from an ignored user shown")
	}
	// Others still see bob.
	carol.join(t, roomID)
	if !slices.Contains(carol.paginate(t, roomID, "b", "", 50, ""), hidden) {
		t.Error("a user who does not ignore bob cannot see his message")
	}
}

func TestFilterAPI(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	path := v3 + "/user/" + url.PathEscape(alice.id) + "/filter"
	filter := map[string]any{
		"event_fields": []string{"type", "content"},
		"event_format": "client",
		"presence":     map[string]any{"types": []string{"m.presence"}},
		"room": map[string]any{
			"include_leave": true,
			"timeline":      map[string]any{"limit": 10, "lazy_load_members": true, "unread_thread_notifications": true},
		},
	}
	id := alice.ok(t, "POST", path, filter).Get("filter_id").Str
	if id == "" || id[0] == '{' {
		t.Fatalf("filter_id %q", id)
	}
	got := alice.ok(t, "GET", path+"/"+id, nil)
	if got.Get("room.timeline.limit").Int() != 10 || got.Get("event_fields.0").Str != "type" {
		t.Errorf("stored filter %s", got.Raw)
	}
	if again := alice.ok(t, "POST", path, filter).Get("filter_id").Str; again != id {
		t.Errorf("the same filter got a second ID %q (first %q)", again, id)
	}
	alice.fails(t, 404, "M_NOT_FOUND", "GET", path+"/999999", nil)
	alice.fails(t, 404, "M_NOT_FOUND", "GET", path+"/abc", nil)
	bob.fails(t, 403, "M_FORBIDDEN", "GET", path+"/"+id, nil)
	bob.fails(t, 403, "M_FORBIDDEN", "POST", path, filter)
	for _, bad := range []any{
		map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": -1}}},
		map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1.5}}},
		map[string]any{"room": map[string]any{"state": map[string]any{"types": "m.room.name"}}},
		map[string]any{"room": map[string]any{"timeline": map[string]any{"senders": []string{"alice"}}}},
		map[string]any{"room": map[string]any{"not_rooms": []any{3}}},
		map[string]any{"event_format": "raw"},
		map[string]any{"event_fields": "type"},
		map[string]any{"room": map[string]any{"include_leave": "yes"}},
		map[string]any{"room": map[string]any{"timeline": map[string]any{"contains_url": "yes"}}},
		[]any{},
	} {
		alice.fails(t, 400, "M_BAD_JSON", "POST", path, bad)
	}
	alice.fails(t, 400, "M_NOT_JSON", "POST", path, "{nope")
}
