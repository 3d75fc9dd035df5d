package syncapi_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// unread returns a joined room's unread_notifications as (notifications,
// highlights), and whether the room is in the response.
func unread(res gjson.Result, roomID string) (n, h int64, present bool) {
	r := joinedRoom(res, roomID)
	c := r.Get("unread_notifications")
	return c.Get("notification_count").Int(), c.Get("highlight_count").Int(), r.Exists()
}

// nextWith long-polls until a response has the room, and returns it.
func (u *user) nextWith(t *testing.T, since, roomID, what string) gjson.Result {
	t.Helper()
	for range 5 {
		res := receive(t, u.waitSync(t, since), what)
		if joinedRoom(res.res, roomID).Exists() {
			return res.res
		}
		since = res.res.Get("next_batch").Str
	}
	t.Fatalf("no response with room %s for %s", roomID, what)
	return gjson.Result{}
}

// Counts go up with messages, in the same response as the message; a
// mention highlights; the reader's receipts (public or private) and their
// own messages reset them; the sender's own messages never count.
func TestUnreadNotifications(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	carol.join(t, roomID)

	init := bob.sync(t, quiet)
	if n, h, ok := unread(init, roomID); !ok || n != 0 || h != 0 {
		t.Fatalf("initial sync: %d %d %v", n, h, ok)
	}
	since := init.Get("next_batch").Str

	// A waiting sync gets the message and its count together.
	ch := bob.waitSync(t, since)
	m1 := alice.send(t, roomID, "hello")
	r := receive(t, ch, "the first message").res
	if !slices.Contains(timelineIDs(r, "join", roomID), m1) {
		t.Fatalf("first message not in %s", r.Raw)
	}
	if n, h, _ := unread(r, roomID); n != 1 || h != 0 {
		t.Fatalf("with the first message: notification_count %d, highlight_count %d; want 1, 0: %s", n, h, r.Raw)
	}
	since = r.Get("next_batch").Str

	ch = bob.waitSync(t, since)
	m2 := alice.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": "bob: look",
		"m.mentions": map[string]any{"user_ids": []string{bob.id}}})
	r = receive(t, ch, "the mention").res
	if !slices.Contains(timelineIDs(r, "join", roomID), m2) {
		t.Fatalf("mention not in %s", r.Raw)
	}
	if n, h, _ := unread(r, roomID); n != 2 || h != 1 {
		t.Fatalf("with the mention: %d, %d; want 2, 1: %s", n, h, r.Raw)
	}
	since = r.Get("next_batch").Str
	// carol was not mentioned; alice sent both.
	if n, h, _ := unread(carol.sync(t, quiet), roomID); n != 2 || h != 0 {
		t.Errorf("carol: %d, %d; want 2, 0", n, h)
	}
	if n, h, _ := unread(alice.sync(t, quiet), roomID); n != 0 || h != 0 {
		t.Errorf("alice, who sent them: %d, %d", n, h)
	}

	// A receipt on the first message leaves the mention unread; one on
	// the mention clears the room.
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(m1), map[string]any{})
	r = bob.nextWith(t, since, roomID, "the receipt on the first message")
	if n, h, _ := unread(r, roomID); n != 1 || h != 1 {
		t.Fatalf("after a receipt on the first message: %d, %d; want 1, 1", n, h)
	}
	since = r.Get("next_batch").Str
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read.private/"+url.PathEscape(m2), map[string]any{})
	r = bob.nextWith(t, since, roomID, "the private receipt")
	if n, h, _ := unread(r, roomID); n != 0 || h != 0 {
		t.Fatalf("after a private receipt on the mention: %d, %d", n, h)
	}
	since = r.Get("next_batch").Str

	// Sending counts as reading.
	ch = bob.waitSync(t, since)
	alice.send(t, roomID, "anyone?")
	r = receive(t, ch, "a third message").res
	if n, _, _ := unread(r, roomID); n != 1 {
		t.Fatalf("after a third message: %d", n)
	}
	since = r.Get("next_batch").Str
	bob.send(t, roomID, "me")
	r = bob.nextWith(t, since, roomID, "bob's own message")
	for n, _, _ := unread(r, roomID); n != 0; n, _, _ = unread(r, roomID) {
		// The count may come one response after bob's message.
		r = bob.nextWith(t, r.Get("next_batch").Str, roomID, "bob's count after his message")
	}

	// A muted room (a room rule without actions) counts nothing.
	bob.ok(t, "PUT", v3+"/pushrules/global/room/"+url.PathEscape(roomID), map[string]any{"actions": []any{}})
	alice.send(t, roomID, "muted")
	if n, _, _ := unread(bob.sync(t, quiet), roomID); n != 0 {
		t.Errorf("muted room counts %d", n)
	}
}

// With unread_thread_notifications the room's count is the main
// timeline's and each thread has its own, cleared by threaded receipts.
func TestUnreadThreadNotifications(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	newUser(t, s, "carol").join(t, roomID) // three members: no one-to-one rule

	root := alice.send(t, roomID, "root")
	inThread := func(body string) string {
		return alice.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": body,
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
	}
	r1 := inThread("reply 1")
	r2 := inThread("reply 2")
	threaded := `{"room":{"timeline":{"unread_thread_notifications":true}}}`
	// Not a waiting sync: the notifier may not have got to the replies.
	var jr gjson.Result
	waitFor(t, "the thread's notifications", func() bool {
		jr = joinedRoom(bob.sync(t, params("filter", threaded)), roomID)
		return jr.Get("unread_thread_notifications."+esc(root)+".notification_count").Int() == 2
	})
	if n := jr.Get("unread_notifications.notification_count").Int(); n != 1 {
		t.Fatalf("main timeline count %d, want 1 (the root): %s", n, jr.Raw)
	}
	thread := jr.Get("unread_thread_notifications." + esc(root))
	if thread.Get("notification_count").Int() != 2 {
		t.Fatalf("thread counts: %s", jr.Get("unread_thread_notifications").Raw)
	}
	// Without the filter option: everything together, no thread object.
	plain := joinedRoom(bob.sync(t, quiet), roomID)
	if n := plain.Get("unread_notifications.notification_count").Int(); n != 3 || plain.Get("unread_thread_notifications").Exists() {
		t.Fatalf("without the option: %s", plain.Raw)
	}

	// A threaded receipt in the thread at the first reply.
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(r1), map[string]any{"thread_id": root})
	jr = joinedRoom(bob.sync(t, params("filter", threaded)), roomID)
	if jr.Get("unread_notifications.notification_count").Int() != 1 ||
		jr.Get("unread_thread_notifications."+esc(root)+".notification_count").Int() != 1 {
		t.Fatalf("after a threaded receipt on the first reply: %s", jr.Raw)
	}
	// A main-timeline receipt at the root clears the root only.
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(root), map[string]any{"thread_id": "main"})
	jr = joinedRoom(bob.sync(t, params("filter", threaded)), roomID)
	if jr.Get("unread_notifications.notification_count").Int() != 0 ||
		jr.Get("unread_thread_notifications."+esc(root)+".notification_count").Int() != 1 {
		t.Fatalf("after a main receipt on the root: %s", jr.Raw)
	}
	// An unthreaded receipt at the last reply clears everything.
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(r2), map[string]any{})
	jr = joinedRoom(bob.sync(t, params("filter", threaded)), roomID)
	if jr.Get("unread_notifications.notification_count").Int() != 0 || jr.Get("unread_thread_notifications").Exists() {
		t.Fatalf("after an unthreaded receipt: %s", jr.Raw)
	}
}

// A redaction withdraws its event's notifications, as Synapse does: an
// unread one comes off the count in the response with the redaction, and
// /notifications lists neither an unread nor a read one any more.
func TestRedactionWithdrawsNotifications(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	since := bob.sync(t, quiet).Get("next_batch").Str

	m1 := alice.send(t, roomID, "one")
	m2 := alice.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": "bob: two",
		"m.mentions": map[string]any{"user_ids": []string{bob.id}}})
	m3 := alice.send(t, roomID, "three")
	bob.ok(t, "POST", room(roomID)+"/receipt/m.read/"+url.PathEscape(m1), map[string]any{})
	if n, h, _ := unread(bob.sync(t, quiet), roomID); n != 2 || h != 1 {
		t.Fatalf("before the redactions: %d, %d; want 2, 1", n, h)
	}

	// The unread mention: its count and highlight go, with the redaction.
	ch := bob.waitSync(t, since)
	red := alice.redact(t, roomID, m2)
	r := receive(t, ch, "the redaction").res
	for !slices.Contains(timelineIDs(r, "join", roomID), red) {
		r = bob.nextWith(t, r.Get("next_batch").Str, roomID, "the redaction")
	}
	if n, h, _ := unread(r, roomID); n != 1 || h != 0 {
		t.Fatalf("with the redaction of the mention: %d, %d; want 1, 0: %s", n, h, r.Raw)
	}
	// The read message: nothing to take off.
	alice.redact(t, roomID, m1)
	if n, h, _ := unread(bob.sync(t, quiet), roomID); n != 1 || h != 0 {
		t.Fatalf("after the redaction of a read message: %d, %d; want 1, 0", n, h)
	}
	var listed []string
	for _, n := range bob.ok(t, "GET", v3+"/notifications", nil).Get("notifications").Array() {
		listed = append(listed, n.Get("event.event_id").Str)
	}
	if !slices.Equal(listed, []string{m3}) {
		t.Fatalf("/notifications lists %v, want only %s", listed, m3)
	}
}

// An initial sync carries the default push rules as account data for a
// user who never changed them, and the stored ones after a change.
func TestPushRulesAccountData(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	bob := newUser(t, s, "bob")
	bob.createRoom(t, nil) // a stream position above 0 for the token
	rules := func(res gjson.Result) gjson.Result {
		var out gjson.Result
		res.Get("account_data.events").ForEach(func(_, ev gjson.Result) bool {
			if ev.Get("type").Str == "m.push_rules" {
				out = ev.Get("content")
			}
			return true
		})
		return out
	}
	init := bob.sync(t, quiet)
	got := rules(init)
	if got.Get("global.override.0.rule_id").Str != ".m.rule.master" || !got.Get("global.underride.#").Exists() {
		t.Fatalf("initial sync push rules: %s", got.Raw)
	}
	ch := bob.waitSync(t, init.Get("next_batch").Str)
	bob.ok(t, "PUT", v3+"/pushrules/global/content/cake", map[string]any{"pattern": "cake", "actions": []any{"notify"}})
	r := receive(t, ch, "the push rules change").res
	if rules(r).Get("global.content.0.rule_id").Str != "cake" {
		t.Fatalf("incremental sync after a change: %s", r.Raw)
	}
	if rules(bob.sync(t, params("filter", `{"account_data":{"not_types":["m.push_rules"]}}`))).Exists() {
		t.Error("push rules sent despite the filter")
	}
}
