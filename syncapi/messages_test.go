package syncapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func chunkIDs(res gjson.Result) []string {
	var ids []string
	res.Get("chunk").ForEach(func(_, ev gjson.Result) bool {
		ids = append(ids, ev.Get("event_id").Str)
		return true
	})
	return ids
}

// paginate follows /messages from from in direction dir until it returns
// no end token, and returns every event ID in the order received.
func (u *user) paginate(t *testing.T, roomID, dir, from string, limit int, filter string) []string {
	t.Helper()
	var all []string
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("pagination does not end")
		}
		q := url.Values{"dir": {dir}, "limit": {fmt.Sprint(limit)}}
		if from != "" {
			q.Set("from", from)
		}
		if filter != "" {
			q.Set("filter", filter)
		}
		res := u.ok(t, "GET", room(roomID)+"/messages?"+q.Encode(), nil)
		if from != "" && res.Get("start").Str != from {
			t.Errorf("start %q, want the from token %q", res.Get("start").Str, from)
		}
		all = append(all, chunkIDs(res)...)
		if !res.Get("end").Exists() {
			return all
		}
		from = res.Get("end").Str
	}
}

// TestMessagesConcurrentSends pages backwards and forwards through a room
// while others keep sending: no event may repeat or be skipped.
func TestMessagesConcurrentSends(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	var before []string
	for i := range 30 {
		before = append(before, alice.send(t, roomID, fmt.Sprint("before ", i)))
	}
	start := alice.sync(t, quiet).Get("next_batch").Str

	// Others send while alice pages backwards from her sync token, then
	// forwards from it.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		during []string
	)
	for _, sender := range []*user{alice, bob} {
		wg.Go(func() {
			for i := range 20 {
				id := sender.send(t, roomID, fmt.Sprint("during ", i))
				mu.Lock()
				during = append(during, id)
				mu.Unlock()
			}
		})
	}
	back := alice.paginate(t, roomID, "b", start, 7, "")
	wg.Wait()

	if dup := firstDuplicate(back); dup != "" {
		t.Fatalf("backwards pagination repeats %s", dup)
	}
	slices.Reverse(back)
	if len(back) < len(before) || !slices.Equal(back[len(back)-len(before):], before) {
		t.Fatalf("backwards pagination from the sync token: the last %d events are not the messages sent before it", len(before))
	}
	for _, id := range during {
		if slices.Contains(back, id) {
			t.Fatalf("backwards pagination from the token returned %s, sent after it", id)
		}
	}

	forward := alice.paginate(t, roomID, "f", start, 6, "")
	if dup := firstDuplicate(forward); dup != "" {
		t.Fatalf("forwards pagination repeats %s", dup)
	}
	slices.Sort(during)
	got := slices.Clone(forward)
	slices.Sort(got)
	if !slices.Equal(got, during) {
		t.Fatalf("forwards pagination returned %d events, want exactly the %d sent after the token", len(forward), len(during))
	}

	// The whole room forwards from its start, in the same order backwards.
	all := alice.paginate(t, roomID, "f", "", 9, "")
	rev := alice.paginate(t, roomID, "b", "", 11, "")
	slices.Reverse(rev)
	if !slices.Equal(all, rev) || len(all) < 30+40 {
		t.Fatalf("forwards (%d events) and backwards (%d) walks of the room differ", len(all), len(rev))
	}
}

func firstDuplicate(ids []string) string {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return id
		}
		seen[id] = true
	}
	return ""
}

func TestMessagesVisibilityAndErrors(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, eve := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "eve")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	alice.setState(t, roomID, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	secret := alice.send(t, roomID, "before bob")
	bob.join(t, roomID)
	seen := alice.send(t, roomID, "after bob joined")

	// joined: bob sees nothing from before his join.
	ids := bob.paginate(t, roomID, "b", "", 50, "")
	if slices.Contains(ids, secret) || !slices.Contains(ids, seen) {
		t.Errorf("history_visibility joined: bob sees %v (secret %s, seen %s)", ids, secret, seen)
	}
	// A user never in the room: 403, and the same for an unknown room.
	eve.fails(t, 403, "M_FORBIDDEN", "GET", room(roomID)+"/messages?dir=b", nil)
	eve.fails(t, 403, "M_FORBIDDEN", "GET", room("!nope:"+s.Name)+"/messages?dir=b", nil)
	// After leaving, nothing sent later.
	bob.leave(t, roomID)
	later := alice.send(t, roomID, "after bob left")
	ids = bob.paginate(t, roomID, "b", "", 50, "")
	if slices.Contains(ids, later) || !slices.Contains(ids, seen) {
		t.Errorf("after leaving: bob sees %v (later %s)", ids, later)
	}

	for _, c := range []struct{ query, code string }{
		{"", "M_MISSING_PARAM"},
		{"dir=x", "M_INVALID_PARAM"},
		{"dir=b&limit=-1", "M_INVALID_PARAM"},
		{"dir=b&limit=many", "M_INVALID_PARAM"},
		{"dir=b&from=xyz", "M_INVALID_PARAM"},
		{"dir=b&to=s1_x", "M_INVALID_PARAM"},
		{"dir=b&filter=" + url.QueryEscape("{"), "M_NOT_JSON"},
		{"dir=b&filter=" + url.QueryEscape(`{"types":"m.room.message"}`), "M_BAD_JSON"},
	} {
		alice.fails(t, 400, c.code, "GET", room(roomID)+"/messages?"+c.query, nil)
	}
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", v3+"/rooms/not-a-room/messages?dir=b", nil)
}

func TestMessagesFilterAndLazyMembers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	var bobs []string
	for i := range 12 {
		alice.send(t, roomID, fmt.Sprint("a", i))
		if i%3 == 0 {
			bobs = append(bobs, bob.send(t, roomID, fmt.Sprint("b", i)))
		}
	}
	// A filter keeps pages full of matching events (or ends them).
	got := alice.paginate(t, roomID, "b", "", 2, `{"senders":["`+bob.id+`"],"types":["m.room.message"]}`)
	slices.Reverse(got)
	if !slices.Equal(got, bobs) {
		t.Errorf("filtered pagination %v, want %v", got, bobs)
	}
	res := alice.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=3&filter="+url.QueryEscape(`{"lazy_load_members":true}`), nil)
	var members []string
	res.Get("state").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("type").Str == "m.room.member" {
			members = append(members, ev.Get("state_key").Str)
		}
		return true
	})
	senders := map[string]bool{}
	res.Get("chunk").ForEach(func(_, ev gjson.Result) bool {
		senders[ev.Get("sender").Str] = true
		if ev.Get("room_id").Str != roomID {
			t.Errorf("/messages event without room_id: %s", ev.Raw)
		}
		return true
	})
	for s := range senders {
		if !slices.Contains(members, s) {
			t.Errorf("lazy /messages state %v lacks sender %s", members, s)
		}
	}
}

func TestContext(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, eve := newUser(t, s, "alice"), newUser(t, s, "eve")
	roomID := alice.createRoom(t, map[string]any{"name": "ctx"})
	var ids []string
	for i := range 9 {
		ids = append(ids, alice.send(t, roomID, fmt.Sprint("m", i)))
	}
	res := alice.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(ids[4])+"?limit=4", nil)
	if res.Get("event.event_id").Str != ids[4] {
		t.Fatalf("event %s", res.Get("event").Raw)
	}
	before := chunkOf(res.Get("events_before"))
	after := chunkOf(res.Get("events_after"))
	if !slices.Equal(before, []string{ids[3], ids[2]}) || !slices.Equal(after, []string{ids[5], ids[6]}) {
		t.Errorf("before %v after %v", before, after)
	}
	state := map[string]bool{}
	res.Get("state").ForEach(func(_, ev gjson.Result) bool {
		state[ev.Get("type").Str] = true
		return true
	})
	if !state["m.room.create"] || !state["m.room.name"] || !state["m.room.member"] {
		t.Errorf("context state %v", state)
	}
	// The tokens continue with /messages.
	prev := chunkIDs(alice.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=1&from="+res.Get("start").Str, nil))
	next := chunkIDs(alice.ok(t, "GET", room(roomID)+"/messages?dir=f&limit=1&from="+res.Get("end").Str, nil))
	if !slices.Equal(prev, []string{ids[1]}) || !slices.Equal(next, []string{ids[7]}) {
		t.Errorf("/messages from the context tokens: before %v after %v", prev, next)
	}
	// limit 0 still returns the event.
	res = alice.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(ids[4])+"?limit=0", nil)
	if res.Get("event.event_id").Str != ids[4] || len(chunkOf(res.Get("events_before"))) != 0 {
		t.Errorf("limit 0: %s", res.Raw)
	}
	alice.fails(t, 404, "M_NOT_FOUND", "GET", room(roomID)+"/context/"+url.PathEscape("$unknown"), nil)
	eve.fails(t, 403, "M_FORBIDDEN", "GET", room(roomID)+"/context/"+url.PathEscape(ids[4]), nil)
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", room(roomID)+"/context/"+url.PathEscape(ids[4])+"?limit=x", nil)
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", room(roomID)+"/context/not-an-event", nil)
	other := alice.createRoom(t, nil)
	alice.fails(t, 404, "M_NOT_FOUND", "GET", room(other)+"/context/"+url.PathEscape(ids[4]), nil)
}

func chunkOf(arr gjson.Result) []string {
	var ids []string
	arr.ForEach(func(_, ev gjson.Result) bool {
		ids = append(ids, ev.Get("event_id").Str)
		return true
	})
	return ids
}

// TestHistoryAfterLeavingShared: with history_visibility shared, a user
// who joined and left sees, through /messages and /context, only what was
// sent while they were joined and their own member events; joining again
// gives them the whole shared history back (the roomserver's rule,
// roomserver.EventVisibility).
func TestHistoryAfterLeavingShared(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"}) // shared
	early := alice.send(t, roomID, "before bob joined")
	bob.join(t, roomID)
	during := alice.send(t, roomID, "while bob is in")
	bob.leave(t, roomID)
	late := alice.send(t, roomID, "after bob left")
	// bob's join and leave, as alice pages them.
	var bobsMembers []string
	for _, ev := range alice.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=50", nil).Get("chunk").Array() {
		if ev.Get("type").Str == "m.room.member" && ev.Get("state_key").Str == bob.id {
			bobsMembers = append(bobsMembers, ev.Get("event_id").Str)
		}
	}
	if len(bobsMembers) != 2 {
		t.Fatalf("bob's member events %v, want his join and leave", bobsMembers)
	}

	ids := bob.paginate(t, roomID, "b", "", 3, "")
	if slices.Contains(ids, early) || slices.Contains(ids, late) || !slices.Contains(ids, during) {
		t.Errorf("bob, gone: /messages %v (early %s, during %s, late %s)", ids, early, during, late)
	}
	for _, id := range bobsMembers {
		if !slices.Contains(ids, id) {
			t.Errorf("bob, gone: /messages %v lacks his own member event %s", ids, id)
		}
	}
	fwd := bob.paginate(t, roomID, "f", "", 3, "")
	slices.Reverse(fwd)
	if !slices.Equal(fwd, ids) {
		t.Errorf("bob, gone: forwards %v, backwards %v", fwd, ids)
	}
	for _, id := range []string{early, late} {
		bob.fails(t, 404, "M_NOT_FOUND", "GET", room(roomID)+"/context/"+url.PathEscape(id), nil)
	}
	res := bob.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(during)+"?limit=20", nil)
	around := append(chunkOf(res.Get("events_before")), chunkOf(res.Get("events_after"))...)
	if slices.Contains(around, early) || slices.Contains(around, late) {
		t.Errorf("bob, gone: /context around %s shows %v (early %s, late %s)", during, around, early, late)
	}
	for _, id := range bobsMembers {
		if !slices.Contains(around, id) {
			t.Errorf("bob, gone: /context %v lacks his own member event %s", around, id)
		}
	}

	// Joined again: all of the shared history.
	bob.join(t, roomID)
	ids = bob.paginate(t, roomID, "b", "", 3, "")
	for _, id := range []string{early, during, late} {
		if !slices.Contains(ids, id) {
			t.Errorf("bob, back: /messages %v lacks %s", ids, id)
		}
	}
	for _, id := range []string{early, late} {
		if got := bob.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(id), nil).Get("event.event_id").Str; got != id {
			t.Errorf("bob, back: /context of %s returned %q", id, got)
		}
	}
}
