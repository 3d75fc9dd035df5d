package syncapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// quiet is set_presence=offline, so that a user's own presence does not
// wake or fill the syncs a test looks at.
var quiet = url.Values{"set_presence": {"offline"}}

func params(kv ...string) url.Values {
	p := url.Values{"set_presence": {"offline"}}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Set(kv[i], kv[i+1])
	}
	return p
}

func stateOf(res gjson.Result, section, roomID string) map[string]string {
	out := map[string]string{}
	res.Get("rooms." + section + "." + esc(roomID) + ".state.events").ForEach(func(_, ev gjson.Result) bool {
		out[ev.Get("type").Str+"|"+ev.Get("state_key").Str] = ev.Get("event_id").Str
		return true
	})
	return out
}

func TestInitialSync(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"name": "the room", "topic": "things"})
	var sent []string
	for i := range 15 {
		sent = append(sent, alice.send(t, roomID, fmt.Sprint("message ", i)))
	}

	res := alice.sync(t, params("filter", `{"room":{"timeline":{"limit":5}}}`))
	if !strings.HasPrefix(res.Get("next_batch").Str, "s") {
		t.Fatalf("next_batch %q", res.Get("next_batch").Str)
	}
	jr := joinedRoom(res, roomID)
	if ids := timelineIDs(res, "join", roomID); !slices.Equal(ids, sent[10:]) {
		t.Errorf("timeline %v, want the last 5 messages %v", ids, sent[10:])
	}
	if !jr.Get("timeline.limited").Bool() || jr.Get("timeline.prev_batch").Str == "" {
		t.Errorf("timeline not limited or without prev_batch: %s", jr.Get("timeline").Raw)
	}
	// The state at the start of the timeline: the whole room state.
	state := stateOf(res, "join", roomID)
	for _, k := range []string{"m.room.create|", "m.room.member|" + alice.id, "m.room.power_levels|", "m.room.name|", "m.room.topic|", "m.room.join_rules|", "m.room.history_visibility|"} {
		if state[k] == "" {
			t.Errorf("state lacks %s: %v", k, state)
		}
	}
	if jr.Get("summary.m\\.joined_member_count").Int() != 1 {
		t.Errorf("summary %s", jr.Get("summary").Raw)
	}
	for _, k := range []string{"ephemeral.events", "account_data.events", "unread_notifications.notification_count", "unread_notifications.highlight_count"} {
		if !jr.Get(k).Exists() {
			t.Errorf("joined room lacks %s: %s", k, jr.Raw)
		}
	}
	// Events in client format, without room_id in /sync.
	ev := jr.Get("timeline.events.0")
	for _, k := range []string{"event_id", "type", "sender", "origin_server_ts", "content", "unsigned.age"} {
		if !ev.Get(k).Exists() {
			t.Errorf("event lacks %s: %s", k, ev.Raw)
		}
	}
	for _, k := range []string{"room_id", "hashes", "signatures", "prev_events", "auth_events", "depth"} {
		if ev.Get(k).Exists() {
			t.Errorf("client event has %s: %s", k, ev.Raw)
		}
	}

	// The state of an initial sync excludes what the timeline shows: with
	// a big limit the whole room is in the timeline and the state is empty.
	res = alice.sync(t, params("filter", `{"room":{"timeline":{"limit":50}}}`))
	if n := len(stateOf(res, "join", roomID)); n != 0 {
		t.Errorf("state has %d events while the timeline holds the whole room", n)
	}
	if joinedRoom(res, roomID).Get("timeline.limited").Bool() {
		t.Error("timeline of the whole room is limited")
	}
}

func TestIncrementalSyncStateDelta(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	filter := `{"room":{"timeline":{"limit":3}}}`
	since := bob.sync(t, params("filter", filter)).Get("next_batch").Str

	// Not limited: the state change is in the timeline, the state empty.
	nameID := alice.setState(t, roomID, "m.room.name", "", map[string]any{"name": "one"})
	res := bob.sync(t, params("since", since, "filter", filter))
	if ids := timelineIDs(res, "join", roomID); !slices.Equal(ids, []string{nameID}) {
		t.Fatalf("timeline %v, want [%s]", ids, nameID)
	}
	if n := len(stateOf(res, "join", roomID)); n != 0 {
		t.Errorf("unlimited incremental sync has %d state events", n)
	}
	since = res.Get("next_batch").Str

	// Limited: state changed in the gap comes as the state delta.
	topicID := alice.setState(t, roomID, "m.room.topic", "", map[string]any{"topic": "gap"})
	name2 := alice.setState(t, roomID, "m.room.name", "", map[string]any{"name": "two"})
	var last []string
	for i := range 5 {
		last = append(last, alice.send(t, roomID, fmt.Sprint("m", i)))
	}
	res = bob.sync(t, params("since", since, "filter", filter))
	jr := joinedRoom(res, roomID)
	if ids := timelineIDs(res, "join", roomID); !slices.Equal(ids, last[2:]) {
		t.Fatalf("timeline %v, want %v", ids, last[2:])
	}
	if !jr.Get("timeline.limited").Bool() {
		t.Error("timeline not limited")
	}
	state := stateOf(res, "join", roomID)
	if state["m.room.topic|"] != topicID || state["m.room.name|"] != name2 || len(state) != 2 {
		t.Errorf("state delta %v, want the topic %s and the second name %s", state, topicID, name2)
	}

	// prev_batch leads into /messages: the gap's events, back to the token.
	gap := bob.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=50&from="+jr.Get("timeline.prev_batch").Str+"&to="+since, nil)
	var gapIDs []string
	gap.Get("chunk").ForEach(func(_, ev gjson.Result) bool {
		gapIDs = append(gapIDs, ev.Get("event_id").Str)
		return true
	})
	want := []string{last[1], last[0], name2, topicID}
	if !slices.Equal(gapIDs, want) {
		t.Errorf("/messages over the gap %v, want %v", gapIDs, want)
	}

	// full_state: the whole state, even incrementally.
	res = bob.sync(t, params("since", res.Get("next_batch").Str, "full_state", "true"))
	if st := stateOf(res, "join", roomID); st["m.room.create|"] == "" || st["m.room.member|"+bob.id] == "" {
		t.Errorf("full_state sync state %v", st)
	}
}

func TestSyncMembershipSections(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"name": "private"})
	since := bob.sync(t, quiet).Get("next_batch").Str

	// Invite: stripped state, with the invite event.
	alice.invite(t, roomID, bob.id)
	res := bob.sync(t, params("since", since))
	inv := res.Get("rooms.invite." + esc(roomID) + ".invite_state.events")
	var types []string
	inv.ForEach(func(_, ev gjson.Result) bool {
		types = append(types, ev.Get("type").Str)
		if ev.Get("type").Str != "m.room.member" && ev.Get("event_id").Exists() {
			t.Errorf("stripped state event has an event_id: %s", ev.Raw)
		}
		return true
	})
	for _, want := range []string{"m.room.create", "m.room.name", "m.room.join_rules", "m.room.member"} {
		if !slices.Contains(types, want) {
			t.Errorf("invite_state %v lacks %s", types, want)
		}
	}
	if res.Get("rooms.join." + esc(roomID)).Exists() {
		t.Error("invited room in the join section")
	}
	initial := bob.sync(t, quiet)
	if !initial.Get("rooms.invite." + esc(roomID)).Exists() {
		t.Error("initial sync lacks the invite")
	}
	since = res.Get("next_batch").Str

	// Join: the room comes whole, with its state.
	bob.join(t, roomID)
	msg := alice.send(t, roomID, "welcome")
	res = bob.sync(t, params("since", since))
	jr := joinedRoom(res, roomID)
	if !jr.Exists() {
		t.Fatalf("joined room missing: %s", res.Raw)
	}
	all := append(timelineIDs(res, "join", roomID), mapValues(stateOf(res, "join", roomID))...)
	if !slices.Contains(all, msg) || len(all) < 6 {
		t.Errorf("newly joined room lacks its state or the message: %s", jr.Raw)
	}
	if res.Get("rooms.invite." + esc(roomID)).Exists() {
		t.Error("joined room still in the invite section")
	}
	since = res.Get("next_batch").Str

	// Leave: the leave section, with the events up to the leave.
	before := alice.send(t, roomID, "before you go")
	bob.leave(t, roomID)
	after := alice.send(t, roomID, "after")
	res = bob.sync(t, params("since", since))
	left := timelineIDs(res, "leave", roomID)
	if !slices.Contains(left, before) || slices.Contains(left, after) || len(left) < 2 {
		t.Errorf("leave timeline %v: want %s and the leave, not %s", left, before, after)
	}
	if res.Get("rooms.join." + esc(roomID)).Exists() {
		t.Error("left room in the join section")
	}
	since = res.Get("next_batch").Str
	res = bob.sync(t, params("since", since))
	if res.Get("rooms.leave." + esc(roomID)).Exists() {
		t.Error("the leave is sent twice")
	}

	// Left rooms appear in an initial sync only with include_leave.
	if bob.sync(t, quiet).Get("rooms.leave." + esc(roomID)).Exists() {
		t.Error("initial sync without include_leave has the left room")
	}
	res = bob.sync(t, params("filter", `{"room":{"include_leave":true}}`))
	if ids := timelineIDs(res, "leave", roomID); slices.Contains(ids, after) || len(ids) == 0 {
		t.Errorf("include_leave timeline %v (must end at the leave, without %s)", ids, after)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestSyncKnock(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"name": "knock knock", "room_version": "11"})
	alice.setState(t, roomID, "m.room.join_rules", "", map[string]any{"join_rule": "knock"})
	since := bob.sync(t, quiet).Get("next_batch").Str
	status, res := bob.do(t, "POST", v3+"/knock/"+url.PathEscape(roomID), map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("knock: %d %s", status, res.Raw)
	}
	got := bob.sync(t, params("since", since))
	ks := got.Get("rooms.knock." + esc(roomID) + ".knock_state.events")
	found := false
	ks.ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("type").Str == "m.room.member" && ev.Get("content.membership").Str == "knock" {
			found = true
		}
		return true
	})
	if !found {
		t.Errorf("knock_state lacks the knock: %s", got.Raw)
	}
}

func TestSyncBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	for _, c := range []struct {
		query      string
		status     int
		code, what string
	}{
		{"since=garbage", 400, "M_INVALID_PARAM", "bad token"},
		{"since=s12x", 400, "M_INVALID_PARAM", "bad token"},
		{"since=s-1", 400, "M_INVALID_PARAM", "negative token"},
		{"since=s1_2", 400, "M_INVALID_PARAM", "token without instance"},
		{"timeout=soon", 400, "M_INVALID_PARAM", "bad timeout"},
		{"timeout=-5", 400, "M_INVALID_PARAM", "negative timeout"},
		{"full_state=yes", 400, "M_INVALID_PARAM", "bad boolean"},
		{"set_presence=busy", 400, "M_INVALID_PARAM", "bad presence"},
		{"filter=12345", 400, "M_INVALID_PARAM", "unknown filter ID"},
		{"filter=" + url.QueryEscape(`{"room":`), 400, "M_NOT_JSON", "inline filter not JSON"},
		{"filter=" + url.QueryEscape(`{"room":{"timeline":{"limit":"ten"}}}`), 400, "M_BAD_JSON", "wrong type"},
		{"filter=" + url.QueryEscape(`{"room":{"rooms":["not-a-room"]}}`), 400, "M_BAD_JSON", "bad room ID"},
		{"filter=" + url.QueryEscape(`{"event_format":"xml"}`), 400, "M_BAD_JSON", "bad event_format"},
		{"from=s1", 400, "M_INVALID_PARAM", "from instead of since"},
	} {
		t.Run(c.what, func(t *testing.T) {
			alice.fails(t, c.status, c.code, "GET", v3+"/sync?"+c.query, nil)
		})
	}
	// No token at all: 401.
	status, raw := s.Do(t, "GET", v3+"/sync", "", nil)
	if status != http.StatusUnauthorized || gjson.GetBytes(raw, "errcode").Str != "M_MISSING_TOKEN" {
		t.Errorf("sync without a token: %d %s", status, raw)
	}
}

func TestSyncFilters(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	r1 := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	r2 := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, r1)
	bob.join(t, r2)
	since := bob.sync(t, quiet).Get("next_batch").Str
	m1 := alice.send(t, r1, "from alice")
	n1 := alice.sendEvent(t, r1, "org.example.note", map[string]any{"x": 1})
	u1 := alice.sendEvent(t, r1, "m.room.message", map[string]any{"msgtype": "m.image", "body": "pic", "url": "mxc://x/y"})
	b1 := bob.send(t, r1, "from bob")
	m2 := alice.send(t, r2, "other room")

	for _, c := range []struct {
		filter string
		want   map[string][]string
	}{
		{`{"room":{"timeline":{"types":["m.room.message"]}}}`, map[string][]string{r1: {m1, u1, b1}, r2: {m2}}},
		{`{"room":{"timeline":{"types":["org.*"]}}}`, map[string][]string{r1: {n1}}},
		{`{"room":{"timeline":{"not_types":["m.*"]}}}`, map[string][]string{r1: {n1}}},
		{`{"room":{"timeline":{"senders":["` + bob.id + `"]}}}`, map[string][]string{r1: {b1}}},
		{`{"room":{"timeline":{"not_senders":["` + alice.id + `"]}}}`, map[string][]string{r1: {b1}}},
		{`{"room":{"timeline":{"contains_url":true}}}`, map[string][]string{r1: {u1}}},
		{`{"room":{"rooms":["` + r2 + `"]}}`, map[string][]string{r2: {m2}}},
		{`{"room":{"not_rooms":["` + r2 + `"]}}`, map[string][]string{r1: {m1, n1, u1, b1}}},
		{`{"room":{"timeline":{"not_rooms":["` + r1 + `"]}}}`, map[string][]string{r2: {m2}}},
		{`{"room":{"timeline":{"limit":1}}}`, map[string][]string{r1: {b1}, r2: {m2}}},
	} {
		res := bob.sync(t, params("since", since, "filter", c.filter))
		for _, r := range []string{r1, r2} {
			got := timelineIDs(res, "join", r)
			if !slices.Equal(got, c.want[r]) {
				t.Errorf("filter %s, room %s: timeline %v, want %v", c.filter, r, got, c.want[r])
			}
		}
	}

	// event_fields and event_format.
	res := bob.sync(t, params("since", since, "filter", `{"event_fields":["type","content.body"],"room":{"timeline":{"limit":1}}}`))
	ev := joinedRoom(res, r1).Get("timeline.events.0")
	if ev.Get("type").Str != "m.room.message" || ev.Get("content.body").Str != "from bob" || ev.Get("sender").Exists() || ev.Get("content.msgtype").Exists() {
		t.Errorf("event_fields gave %s", ev.Raw)
	}
	res = bob.sync(t, params("since", since, "filter", `{"event_format":"federation","room":{"timeline":{"limit":1}}}`))
	ev = joinedRoom(res, r1).Get("timeline.events.0")
	if !ev.Get("signatures").Exists() || !ev.Get("room_id").Exists() {
		t.Errorf("federation format gave %s", ev.Raw)
	}

	// A stored filter works like an inline one.
	id := bob.ok(t, "POST", v3+"/user/"+url.PathEscape(bob.id)+"/filter", map[string]any{
		"room": map[string]any{"timeline": map[string]any{"types": []string{"org.example.note"}}},
	}).Get("filter_id").Str
	res = bob.sync(t, params("since", since, "filter", id))
	if got := timelineIDs(res, "join", r1); !slices.Equal(got, []string{n1}) {
		t.Errorf("stored filter: timeline %v", got)
	}
}

func TestLazyLoadMembers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "name": "lazy"})
	bob.join(t, roomID)
	carol.join(t, roomID)
	for i := range 5 {
		alice.send(t, roomID, fmt.Sprint("a", i))
	}
	lazy := `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":3}}}`
	res := carol.sync(t, params("filter", lazy))
	state := stateOf(res, "join", roomID)
	if state["m.room.member|"+alice.id] == "" || state["m.room.member|"+carol.id] == "" {
		t.Errorf("lazy state lacks the sender's or the user's own member event: %v", state)
	}
	if state["m.room.member|"+bob.id] != "" {
		t.Errorf("lazy state has a member who sent nothing: %v", state)
	}
	if state["m.room.name|"] == "" {
		t.Errorf("lazy state lacks non-member state: %v", state)
	}
	since := res.Get("next_batch").Str

	// A new sender's member event comes with their first message...
	bobMsg := bob.send(t, roomID, "hi from bob")
	res = carol.sync(t, params("since", since, "filter", lazy))
	if st := stateOf(res, "join", roomID); st["m.room.member|"+bob.id] == "" {
		t.Errorf("incremental lazy sync lacks the new sender: %v (timeline %v, want %s)", st, timelineIDs(res, "join", roomID), bobMsg)
	}
	since = res.Get("next_batch").Str
	// ... and not again (redundant) unless asked for.
	bob.send(t, roomID, "again")
	res = carol.sync(t, params("since", since, "filter", lazy))
	if st := stateOf(res, "join", roomID); st["m.room.member|"+bob.id] != "" {
		t.Errorf("redundant member event sent again: %v", st)
	}
	bob.send(t, roomID, "and again")
	redundant := `{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true}}}`
	res = carol.sync(t, params("since", res.Get("next_batch").Str, "filter", redundant))
	if st := stateOf(res, "join", roomID); st["m.room.member|"+bob.id] == "" {
		t.Errorf("include_redundant_members: member event missing: %v", st)
	}

	// Without lazy loading every member is there.
	full := stateOf(carol.sync(t, params("filter", `{"room":{"timeline":{"limit":1}}}`)), "join", roomID)
	for _, u := range []*user{alice, bob, carol} {
		if full["m.room.member|"+u.id] == "" {
			t.Errorf("full state lacks %s", u.id)
		}
	}
}

func TestSyncUseStateAfter(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"name": "first"})
	since := alice.sync(t, quiet).Get("next_batch").Str
	nameID := alice.setState(t, roomID, "m.room.name", "", map[string]any{"name": "second"})
	res := alice.sync(t, params("since", since, "use_state_after", "true"))
	jr := joinedRoom(res, roomID)
	if jr.Get("state").Exists() {
		t.Error("state present with use_state_after")
	}
	found := false
	jr.Get("state_after.events").ForEach(func(_, ev gjson.Result) bool {
		found = found || ev.Get("event_id").Str == nameID
		return true
	})
	if !found {
		t.Errorf("state_after lacks the name change: %s", jr.Raw)
	}
}

func TestSyncTransactionID(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	status, res := alice.do(t, "PUT", room(roomID)+"/send/m.room.message/my-txn-1", map[string]any{"msgtype": "m.text", "body": "x"})
	if status != http.StatusOK {
		t.Skipf("PUT /send is not served yet: %d %s", status, res.Raw)
	}
	evID := res.Get("event_id").Str
	jr := joinedRoom(alice.sync(t, quiet), roomID)
	jr.Get("timeline.events").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("event_id").Str == evID && ev.Get("unsigned.transaction_id").Str != "my-txn-1" {
			t.Errorf("own event without its transaction ID: %s", ev.Raw)
		}
		return true
	})
	// Another device of the same user does not get it.
	other, _ := s.Login(t, alice.id)
	res = (&user{s: s, id: alice.id, token: other}).sync(t, quiet)
	joinedRoom(res, roomID).Get("timeline.events").ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("event_id").Str == evID && ev.Get("unsigned.transaction_id").Exists() {
			t.Errorf("another device got the transaction ID: %s", ev.Raw)
		}
		return true
	})
}

func TestPrevContent(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"name": "first"})
	since := alice.sync(t, quiet).Get("next_batch").Str
	first := alice.state(t, roomID)
	second := alice.setState(t, roomID, "m.room.name", "", map[string]any{"name": "second"})
	check := func(ev gjson.Result, where string) {
		t.Helper()
		if ev.Get("unsigned.prev_content.name").Str != "first" || ev.Get("unsigned.replaces_state").Str != first {
			t.Errorf("%s: name change without prev_content: %s", where, ev.Raw)
		}
	}
	res := alice.sync(t, params("since", since))
	check(joinedRoom(res, roomID).Get("timeline.events.#(event_id==\""+second+"\")"), "/sync")
	page := alice.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=1", nil)
	check(page.Get("chunk.0"), "/messages")
	ctx := alice.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(second), nil)
	check(ctx.Get("event"), "/context")
}

// state returns the ID of the room's current m.room.name event.
func (u *user) state(t *testing.T, roomID string) string {
	t.Helper()
	var id string
	u.ok(t, "GET", room(roomID)+"/state", nil).ForEach(func(_, ev gjson.Result) bool {
		if ev.Get("type").Str == "m.room.name" {
			id = ev.Get("event_id").Str
		}
		return true
	})
	return id
}

// TestFilteredTimelineKeepsState: state changes a timeline filter leaves
// out still reach the client, in the state section.
func TestFilteredTimelineKeepsState(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"name": "first"})
	filter := `{"room":{"timeline":{"types":["m.room.message"]}}}`
	since := alice.sync(t, params("filter", filter)).Get("next_batch").Str
	alice.send(t, roomID, "before")
	name := alice.setState(t, roomID, "m.room.name", "", map[string]any{"name": "second"})
	alice.send(t, roomID, "after")
	res := alice.sync(t, params("since", since, "filter", filter))
	if got := stateOf(res, "join", roomID)["m.room.name|"]; got != name {
		t.Errorf("filtered-out name change not in the state: %s", joinedRoom(res, roomID).Raw)
	}
	// An initial sync with the filter: the name is the current one.
	res = alice.sync(t, params("filter", filter))
	if got := stateOf(res, "join", roomID)["m.room.name|"]; got != name {
		t.Errorf("initial sync with a filter: name %s, want %s", got, name)
	}
}

// TestRedactedInClientForm: a redacted event's unsigned.redacted_because
// is the redaction in client form (with its event ID, which the stored
// federation form lacks from room version 3 on), in /sync as in
// /messages; a v11 redaction has redacts at the top level too.
func TestRedactedInClientForm(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"room_version": "11"})
	msg := alice.send(t, roomID, "oops")
	rid := alice.ok(t, "PUT", room(roomID)+"/redact/"+url.PathEscape(msg)+"/r1", map[string]any{"reason": "typo"}).Get("event_id").Str

	check := func(where string, evs []gjson.Result) {
		t.Helper()
		var seenMsg, seenRed bool
		for _, ev := range evs {
			switch ev.Get("event_id").Str {
			case msg:
				seenMsg = true
				rb := ev.Get("unsigned.redacted_because")
				if rb.Get("event_id").Str != rid || rb.Get("redacts").Str != msg || rb.Get("content.reason").Str != "typo" || ev.Get("content.body").Exists() {
					t.Errorf("%s: redacted event %s", where, ev.Raw)
				}
			case rid:
				seenRed = true
				if ev.Get("redacts").Str != msg || ev.Get("content.redacts").Str != msg {
					t.Errorf("%s: redaction %s", where, ev.Raw)
				}
			}
		}
		if !seenMsg || !seenRed {
			t.Errorf("%s: the message (%v) or the redaction (%v) is missing", where, seenMsg, seenRed)
		}
	}
	check("/sync", alice.initialSync(t, "").Get("rooms.join."+esc(roomID)+".timeline.events").Array())
	check("/messages", alice.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=10", nil).Get("chunk").Array())
}
