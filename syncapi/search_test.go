package syncapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// search posts room_events criteria and returns room_events.
func (u *user) search(t *testing.T, criteria map[string]any, nextBatch string) gjson.Result {
	t.Helper()
	path := v3 + "/search"
	if nextBatch != "" {
		path += "?next_batch=" + url.QueryEscape(nextBatch)
	}
	return u.ok(t, "POST", path, map[string]any{"search_categories": map[string]any{"room_events": criteria}}).
		Get("search_categories.room_events")
}

func resultIDs(res gjson.Result) []string {
	var ids []string
	res.Get("results").ForEach(func(_, r gjson.Result) bool {
		ids = append(ids, r.Get("result.event_id").Str)
		return true
	})
	return ids
}

// TestSearch: rank and recent orders, keys, the room filter, highlights,
// context with profiles, groupings, state, pagination, and redactions.
func TestSearch(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	alice.ok(t, "PUT", v3+"/profile/"+url.PathEscape(alice.id)+"/displayname", map[string]any{"displayname": "Alice A."})
	roomA := alice.createRoom(t, map[string]any{"preset": "public_chat", "name": "Martian watch"})
	roomB := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomA)
	bob.join(t, roomB)

	short := alice.send(t, roomA, "Martians!")
	long := bob.send(t, roomA, "I read a long book about the history of farming, and near the end there were martians in it")
	other := alice.send(t, roomB, "martians landed here too")
	alice.send(t, roomA, "nothing to see")
	running := bob.send(t, roomB, "they were running around")

	rank := alice.search(t, map[string]any{"search_term": "martians", "keys": []string{"content.body"}}, "")
	ids := resultIDs(rank)
	if len(ids) != 3 || rank.Get("count").Int() != 3 {
		t.Fatalf("rank: %v (count %s), want 3 results", ids, rank.Get("count").Raw)
	}
	if ids[2] != long {
		t.Errorf("rank: the long message should rank last: %v", ids)
	}
	if r0, r2 := rank.Get("results.0.rank").Float(), rank.Get("results.2.rank").Float(); !(r0 > r2) {
		t.Errorf("rank: ranks %v then %v, want decreasing", r0, r2)
	}
	recent := alice.search(t, map[string]any{"search_term": "martians", "order_by": "recent", "keys": []string{"content.body"}}, "")
	if got := resultIDs(recent); !slices.Equal(got, []string{other, long, short}) {
		t.Fatalf("recent: %v, want %v", got, []string{other, long, short})
	}
	if got := recent.Get("results.0.result.room_id").Str; got != roomB {
		t.Errorf("a result's room_id is %q", got)
	}

	// Keys: the room name is found with content.name, not content.body.
	if got := alice.search(t, map[string]any{"search_term": "watch", "keys": []string{"content.name"}}, ""); got.Get("count").Int() != 1 ||
		got.Get("results.0.result.type").Str != "m.room.name" {
		t.Fatalf("name search: %s", got.Raw)
	}
	if got := alice.search(t, map[string]any{"search_term": "watch", "keys": []string{"content.body"}}, ""); got.Get("count").Int() != 0 {
		t.Fatalf("body search found the name: %s", got.Raw)
	}

	// The room filter.
	inA := alice.search(t, map[string]any{"search_term": "martians", "keys": []string{"content.body"}, "filter": map[string]any{"rooms": []string{roomA}}}, "")
	if got := resultIDs(inA); len(got) != 2 || slices.Contains(got, other) {
		t.Fatalf("rooms filter: %v", got)
	}
	// Without keys, the room's name ("Martian watch") matches too.
	if n := alice.search(t, map[string]any{"search_term": "martians", "filter": map[string]any{"rooms": []string{roomA}}}, "").Get("count").Int(); n != 3 {
		t.Fatalf("rooms filter over every key: %d results, want 3", n)
	}
	notA := alice.search(t, map[string]any{"search_term": "martians", "filter": map[string]any{"not_rooms": []string{roomA}}}, "")
	if got := resultIDs(notA); !slices.Equal(got, []string{other}) {
		t.Fatalf("not_rooms filter: %v", got)
	}
	bySender := alice.search(t, map[string]any{"search_term": "martians", "filter": map[string]any{"senders": []string{bob.id}}}, "")
	if got := resultIDs(bySender); !slices.Equal(got, []string{long}) {
		t.Fatalf("senders filter: %v", got)
	}

	// Highlights are the words as written; stemming finds "running".
	hl := alice.search(t, map[string]any{"search_term": "run", "keys": []string{"content.body"}}, "")
	if got := resultIDs(hl); !slices.Equal(got, []string{running}) || hl.Get("highlights").Raw != `["running"]` {
		t.Fatalf("stemmed search: %v, highlights %s", got, hl.Get("highlights").Raw)
	}
	if h := rank.Get("highlights").Raw; h != `["Martians","martians"]` && h != `["martians","Martians"]` {
		t.Errorf("highlights %s", h)
	}
	// A prefix finds longer words; a phrase needs its words in order.
	if got := resultIDs(alice.search(t, map[string]any{"search_term": "marti", "filter": map[string]any{"rooms": []string{roomB}}}, "")); !slices.Equal(got, []string{other}) {
		t.Fatalf("prefix: %v", got)
	}
	if got := resultIDs(alice.search(t, map[string]any{"search_term": `"martians landed"`}, "")); !slices.Equal(got, []string{other}) {
		t.Fatalf("phrase: %v", got)
	}
	if got := resultIDs(alice.search(t, map[string]any{"search_term": `"landed martians"`}, "")); len(got) != 0 {
		t.Fatalf("phrase out of order: %v", got)
	}
	if got := resultIDs(alice.search(t, map[string]any{"search_term": "martians -book", "keys": []string{"content.body"}}, "")); len(got) != 2 || slices.Contains(got, long) {
		t.Fatalf("excluded word: %v", got)
	}

	// Context with profiles.
	withCtx := alice.search(t, map[string]any{"search_term": "book", "event_context": map[string]any{
		"before_limit": 1, "after_limit": 1, "include_profile": true}}, "")
	c := withCtx.Get("results.0.context")
	if c.Get("events_before.0.event_id").Str != short || c.Get("events_after.#").Int() != 1 {
		t.Fatalf("context: %s", c.Raw)
	}
	if c.Get("start").Str == "" || c.Get("end").Str == "" {
		t.Fatalf("context without tokens: %s", c.Raw)
	}
	if got := c.Get("profile_info." + esc(alice.id) + ".displayname").Str; got != "Alice A." {
		t.Fatalf("profile_info: %s", c.Get("profile_info").Raw)
	}

	// Groupings by room and sender, and state.
	grouped := alice.search(t, map[string]any{"search_term": "martians", "keys": []string{"content.body"}, "include_state": true, "groupings": map[string]any{
		"group_by": []map[string]string{{"key": "room_id"}, {"key": "sender"}}}}, "")
	if g := grouped.Get("groups.room_id." + esc(roomA) + ".results"); len(g.Array()) != 2 {
		t.Fatalf("group of room A: %s", grouped.Get("groups").Raw)
	}
	if g := grouped.Get("groups.sender." + esc(bob.id) + ".results").Raw; g != `["`+long+`"]` {
		t.Fatalf("group of bob: %s", g)
	}
	if !grouped.Get("state."+esc(roomA)).IsArray() || !grouped.Get("state."+esc(roomB)).IsArray() {
		t.Fatalf("include_state: %s", grouped.Get("state").Raw)
	}

	// Pagination, in both orders, through every result once.
	for i := range 7 {
		alice.send(t, roomB, fmt.Sprint("page marker number ", i))
	}
	for _, order := range []string{"rank", "recent"} {
		var all []string
		next := ""
		for page := 0; ; page++ {
			res := alice.search(t, map[string]any{"search_term": "marker", "order_by": order, "filter": map[string]any{"limit": 3}}, next)
			if n := len(res.Get("results").Array()); n > 3 || res.Get("count").Int() != 7 {
				t.Fatalf("%s page %d: %d results, count %s", order, page, n, res.Get("count").Raw)
			}
			all = append(all, resultIDs(res)...)
			if next = res.Get("next_batch").Str; next == "" {
				break
			}
			if page > 10 {
				t.Fatal("search pagination does not end")
			}
		}
		slices.Sort(all)
		if len(all) != 7 || len(slices.Compact(all)) != 7 {
			t.Fatalf("%s: paginated through %v, want 7 distinct", order, all)
		}
	}
	// A group's next_batch continues within the group.
	g := alice.search(t, map[string]any{"search_term": "marker OR martians", "order_by": "recent", "filter": map[string]any{"limit": 2},
		"groupings": map[string]any{"group_by": []map[string]string{{"key": "room_id"}}}}, "")
	groupNext := g.Get("groups.room_id." + esc(roomB) + ".next_batch").Str
	if groupNext == "" {
		t.Fatalf("no next_batch in the group: %s", g.Get("groups").Raw)
	}
	more := alice.search(t, map[string]any{"search_term": "marker OR martians", "order_by": "recent", "filter": map[string]any{"limit": 50},
		"groupings": map[string]any{"group_by": []map[string]string{{"key": "room_id"}}}}, groupNext)
	for _, r := range more.Get("results").Array() {
		if r.Get("result.room_id").Str != roomB {
			t.Fatalf("a group's next page has an event of another room: %s", r.Raw)
		}
	}
	if n := len(more.Get("results").Array()); n != 6 { // 7 markers and 1 martian in room B, 2 seen
		t.Fatalf("the group's next page has %d results, want 6", n)
	}

	// A redacted event is not found any more.
	alice.redact(t, roomB, other)
	waitFor(t, "the redaction to reach the index", func() bool {
		return !slices.Contains(resultIDs(alice.search(t, map[string]any{"search_term": "martians"}, "")), other)
	})

	// Bad requests.
	alice.fails(t, 400, "M_BAD_JSON", "POST", v3+"/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{}}})
	alice.fails(t, 400, "M_BAD_JSON", "POST", v3+"/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{
		"search_term": "x", "keys": []string{"content.secret"}}}})
	alice.fails(t, 400, "M_BAD_JSON", "POST", v3+"/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{
		"search_term": "x", "order_by": "best"}}})
	alice.fails(t, 400, "M_INVALID_PARAM", "POST", v3+"/search?next_batch=nonsense", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{
		"search_term": "x"}}})
}

// TestSearchVisibility: a user who joined a joined-only room later does not
// find what was said before they joined; a user who left does not find what
// was said after; a stranger finds nothing.
func TestSearchVisibility(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol, dave := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol"), newUser(t, s, "dave")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	alice.setState(t, roomID, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	carol.join(t, roomID)
	before := alice.send(t, roomID, "secret plans before bob")
	carol.leave(t, roomID)
	bob.join(t, roomID)
	after := alice.send(t, roomID, "secret plans after bob")

	find := func(u *user) []string {
		return resultIDs(u.search(t, map[string]any{"search_term": "secret plans", "order_by": "recent"}, ""))
	}
	if got := find(alice); !slices.Equal(got, []string{after, before}) {
		t.Fatalf("alice finds %v", got)
	}
	if got := find(bob); !slices.Equal(got, []string{after}) {
		t.Fatalf("bob, who joined later, finds %v, want only %s", got, after)
	}
	if got := find(carol); !slices.Equal(got, []string{before}) {
		t.Fatalf("carol, who left, finds %v, want only %s", got, before)
	}
	if got := find(dave); len(got) != 0 {
		t.Fatalf("a stranger finds %v", got)
	}
	if n := bob.search(t, map[string]any{"search_term": "secret"}, "").Get("count").Int(); n != 1 {
		t.Fatalf("bob's count is %d, want 1", n)
	}
}
