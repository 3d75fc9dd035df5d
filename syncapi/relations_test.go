package syncapi_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const v1 = "/_matrix/client/v1"

func roomV1(roomID string) string { return v1 + "/rooms/" + url.PathEscape(roomID) }

// waitFor polls cond until it holds (relations are recorded from the bus,
// a few milliseconds after the event is sent).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func relatesTo(relType, parent string) map[string]any {
	return map[string]any{"rel_type": relType, "event_id": parent}
}

func (u *user) react(t *testing.T, roomID, parent, key string) string {
	t.Helper()
	return u.sendEvent(t, roomID, "m.reaction", map[string]any{
		"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": parent, "key": key}})
}

func (u *user) reply(t *testing.T, roomID, root, text string) string {
	t.Helper()
	return u.sendEvent(t, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": text, "m.relates_to": relatesTo("m.thread", root)})
}

func (u *user) edit(t *testing.T, roomID, original, text string) string {
	t.Helper()
	return u.sendEvent(t, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "* " + text,
		"m.new_content": map[string]any{"msgtype": "m.text", "body": text},
		"m.relates_to":  relatesTo("m.replace", original)})
}

func (u *user) redact(t *testing.T, roomID, eventID string) string {
	t.Helper()
	txn := "red" + strconv.FormatInt(txnCounter.Add(1), 10)
	return u.ok(t, "PUT", room(roomID)+"/redact/"+url.PathEscape(eventID)+"/"+txn, map[string]any{}).Get("event_id").Str
}

// relations returns every child of parent through /relations, following
// next_batch, and the pages' sizes.
func (u *user) relations(t *testing.T, roomID, parent, suffix string, params url.Values) []string {
	t.Helper()
	var all []string
	from := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("relations pagination does not end")
		}
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		if from != "" {
			q.Set("from", from)
		}
		res := u.ok(t, "GET", roomV1(roomID)+"/relations/"+url.PathEscape(parent)+suffix+"?"+q.Encode(), nil)
		all = append(all, chunkIDs(res)...)
		if from != "" && res.Get("prev_batch").Str != from {
			t.Errorf("prev_batch %q, want the from token %q", res.Get("prev_batch").Str, from)
		}
		if !res.Get("next_batch").Exists() {
			return all
		}
		from = res.Get("next_batch").Str
	}
}

// TestRelationsPagination pages through an event's children in both
// directions with small pages: every child once, in order, and the filters
// by rel_type and event type.
func TestRelationsPagination(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	root := alice.send(t, roomID, "root")
	var want, reactions, replies []string
	for i := range 7 {
		id := bob.react(t, roomID, root, fmt.Sprint("k", i))
		reactions = append(reactions, id)
		want = append(want, id)
		id = alice.reply(t, roomID, root, fmt.Sprint("reply ", i))
		replies = append(replies, id)
		want = append(want, id)
	}
	alice.send(t, roomID, "unrelated")
	last := want[len(want)-1]
	waitFor(t, "the relations to be recorded", func() bool {
		return slices.Contains(alice.relations(t, roomID, root, "", url.Values{"limit": {"50"}}), last)
	})

	for _, limit := range []string{"1", "3", "5"} {
		back := alice.relations(t, roomID, root, "", url.Values{"limit": {limit}})
		fwd := alice.relations(t, roomID, root, "", url.Values{"limit": {limit}, "dir": {"f"}})
		if !slices.Equal(fwd, want) {
			t.Fatalf("limit %s forwards: %v, want %v", limit, fwd, want)
		}
		slices.Reverse(back)
		if !slices.Equal(back, want) {
			t.Fatalf("limit %s backwards (reversed): %v, want %v", limit, back, want)
		}
	}

	// Filters: by rel_type, and by rel_type and event type.
	got := alice.relations(t, roomID, root, "/m.thread", url.Values{"limit": {"2"}, "dir": {"f"}})
	if !slices.Equal(got, replies) {
		t.Fatalf("m.thread children: %v, want %v", got, replies)
	}
	got = alice.relations(t, roomID, root, "/m.annotation/m.reaction", url.Values{"dir": {"f"}})
	if !slices.Equal(got, reactions) {
		t.Fatalf("m.annotation m.reaction children: %v, want %v", got, reactions)
	}
	if got = alice.relations(t, roomID, root, "/m.annotation/m.room.message", nil); len(got) != 0 {
		t.Fatalf("m.annotation m.room.message children: %v, want none", got)
	}

	// from and to bound a range: from page 1's next_batch to nothing.
	first := alice.ok(t, "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?limit=4", nil)
	if ids := chunkIDs(first); !slices.Equal(ids, []string{want[13], want[12], want[11], want[10]}) {
		t.Fatalf("first page %v", ids)
	}
	if first.Get("recursion_depth").Exists() || first.Get("prev_batch").Exists() {
		t.Fatalf("first page has recursion_depth or prev_batch: %s", first.Raw)
	}

	// A redacted child is no longer a child.
	bob.redact(t, roomID, reactions[0])
	waitFor(t, "the redacted reaction to leave the relations", func() bool {
		return !slices.Contains(alice.relations(t, roomID, root, "", url.Values{"limit": {"50"}}), reactions[0])
	})

	// Errors: an unknown event, bad parameters, a stranger.
	alice.fails(t, 404, "M_NOT_FOUND", "GET", roomV1(roomID)+"/relations/$nope", nil)
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?dir=x", nil)
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?recurse=maybe", nil)
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?from=garbage", nil)
	carol := newUser(t, s, "carol")
	carol.fails(t, 404, "M_NOT_FOUND", "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root), nil)
}

// TestRelationsRecurse: recurse follows children of children (3 levels),
// filters apply at every level, and recursion_depth says how deep.
func TestRelationsRecurse(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	root := alice.send(t, roomID, "root")
	reply := alice.reply(t, roomID, root, "in thread")
	edit := alice.edit(t, roomID, reply, "in thread, edited")
	reaction := alice.react(t, roomID, edit, "x")
	deep := alice.react(t, roomID, reaction, "y") // a fourth level
	waitFor(t, "the relations", func() bool {
		return len(alice.relations(t, roomID, reaction, "", nil)) == 1
	})

	if got := alice.relations(t, roomID, root, "", url.Values{"dir": {"f"}}); !slices.Equal(got, []string{reply}) {
		t.Fatalf("without recurse: %v", got)
	}
	res := alice.ok(t, "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?recurse=true&dir=f", nil)
	if got := chunkIDs(res); !slices.Equal(got, []string{reply, edit, reaction}) {
		t.Fatalf("recurse: %v, want the 3 levels %v (not %s)", got, []string{reply, edit, reaction}, deep)
	}
	if res.Get("recursion_depth").Int() != 3 {
		t.Fatalf("recursion_depth %s", res.Get("recursion_depth").Raw)
	}
	res = alice.ok(t, "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root)+"?recurse=false", nil)
	if res.Get("recursion_depth").Int() != 1 {
		t.Fatalf("recurse=false: recursion_depth %s", res.Get("recursion_depth").Raw)
	}
	// Paginated recursion, one at a time, backwards.
	got := alice.relations(t, roomID, root, "", url.Values{"recurse": {"true"}, "limit": {"1"}})
	if !slices.Equal(got, []string{reaction, edit, reply}) {
		t.Fatalf("recurse paginated: %v", got)
	}
	// The filter applies at every level: the edit is only reached through
	// the thread reply, which m.replace does not match.
	if got := alice.relations(t, roomID, root, "/m.replace", url.Values{"recurse": {"true"}}); len(got) != 0 {
		t.Fatalf("recurse m.replace: %v, want none", got)
	}
	if got := alice.relations(t, roomID, root, "/m.thread", url.Values{"recurse": {"true"}}); !slices.Equal(got, []string{reply}) {
		t.Fatalf("recurse m.thread: %v", got)
	}
}

// bundled returns unsigned.m.relations of the event eventID found in evs.
func bundled(evs gjson.Result, eventID string) gjson.Result {
	for _, ev := range evs.Array() {
		if ev.Get("event_id").Str == eventID {
			return ev.Get("unsigned.m\\.relations")
		}
	}
	return gjson.Result{}
}

// TestBundledAggregations: m.replace, m.thread and m.reference are bundled
// in /messages, /context, /event, /relations and limited sync timelines,
// and follow redactions of edits and thread replies.
func TestBundledAggregations(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)

	root := alice.send(t, roomID, "what do you think?")
	edit1 := alice.edit(t, roomID, root, "what do you think now?")
	edit2 := alice.edit(t, roomID, root, "what do you all think now?")
	bob.edit(t, roomID, root, "bob may not edit alice's message")
	reply1 := bob.reply(t, roomID, root, "fine")
	reply2 := bob.reply(t, roomID, root, "really fine")
	replyEdit := bob.edit(t, roomID, reply2, "really, really fine")
	ref := bob.sendEvent(t, roomID, "m.key.verification.done", map[string]any{"m.relates_to": relatesTo("m.reference", root)})
	bob.react(t, roomID, root, "👍") // annotations are not bundled
	for i := range 12 {
		alice.send(t, roomID, fmt.Sprint("filler ", i))
	}

	check := func(where string, rel gjson.Result, wantEdit, wantLatest string, wantCount int, participated bool) {
		t.Helper()
		if got := rel.Get("m\\.replace.event_id").Str; got != wantEdit {
			t.Errorf("%s: m.replace %q, want %q (%s)", where, got, wantEdit, rel.Raw)
		}
		if wantEdit != "" && rel.Get("m\\.replace.content.m\\.new_content.body").Str == "" {
			t.Errorf("%s: the bundled replacement is not the whole event: %s", where, rel.Get("m\\.replace").Raw)
		}
		th := rel.Get("m\\.thread")
		if got := th.Get("latest_event.event_id").Str; got != wantLatest {
			t.Errorf("%s: m.thread latest %q, want %q (%s)", where, got, wantLatest, rel.Raw)
		}
		if th.Get("count").Int() != int64(wantCount) || th.Get("current_user_participated").Bool() != participated {
			t.Errorf("%s: m.thread count %s participated %s, want %d %v", where, th.Get("count").Raw,
				th.Get("current_user_participated").Raw, wantCount, participated)
		}
		if wantLatest == reply2 && th.Get("latest_event.unsigned.m\\.relations.m\\.replace.event_id").Str != replyEdit {
			t.Errorf("%s: the latest reply's own edit is not bundled with it: %s", where, th.Get("latest_event").Raw)
		}
		if refs := rel.Get("m\\.reference.chunk.#.event_id").Raw; refs != `["`+ref+`"]` {
			t.Errorf("%s: m.reference %s, want [%s]", where, refs, ref)
		}
		if rel.Get("m\\.annotation").Exists() {
			t.Errorf("%s: annotations bundled: %s", where, rel.Raw)
		}
	}
	messagesRel := func(u *user) gjson.Result {
		res := u.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=50", nil)
		return bundled(res.Get("chunk"), root)
	}
	waitFor(t, "the aggregations", func() bool {
		return messagesRel(alice).Get("m\\.reference").Exists() && messagesRel(alice).Get("m\\.thread.latest_event.unsigned.m\\.relations").Exists()
	})

	check("/messages as alice", messagesRel(alice), edit2, reply2, 2, true)
	check("/messages as bob", messagesRel(bob), edit2, reply2, 2, true)

	ctxRes := alice.ok(t, "GET", room(roomID)+"/context/"+url.PathEscape(root)+"?limit=2", nil)
	check("/context", ctxRes.Get("event.unsigned.m\\.relations"), edit2, reply2, 2, true)

	ev := alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(root), nil)
	check("/event", ev.Get("unsigned.m\\.relations"), edit2, reply2, 2, true)

	threads := alice.ok(t, "GET", roomV1(roomID)+"/threads", nil)
	check("/threads", bundled(threads.Get("chunk"), root), edit2, reply2, 2, true)

	// A limited sync timeline that holds the root bundles its aggregations;
	// an unlimited one (the client saw the children) does not.
	filter := `{"room":{"timeline":{"limit":22}}}`
	syncRes := alice.initialSync(t, filter)
	tl := joinedRoom(syncRes, roomID).Get("timeline")
	if !tl.Get("limited").Bool() {
		t.Fatal("the initial sync's timeline is not limited")
	}
	check("/sync", bundled(tl.Get("events"), root), edit2, reply2, 2, true)

	carol := newUser(t, s, "carol")
	carol.join(t, roomID)
	check("/messages as a later joiner (shared history)", messagesRel(carol), edit2, reply2, 2, false)

	// Redacting the latest edit falls back to the one before; redacting
	// the latest reply moves the thread back and lowers the count.
	alice.redact(t, roomID, edit2)
	bob.redact(t, roomID, reply2)
	waitFor(t, "the redactions to reach the aggregations", func() bool {
		rel := messagesRel(alice)
		return rel.Get("m\\.replace.event_id").Str == edit1 && rel.Get("m\\.thread.count").Int() == 1
	})
	check("/messages after redactions", messagesRel(alice), edit1, reply1, 1, true)
	ev = alice.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(root), nil)
	check("/event after redactions", ev.Get("unsigned.m\\.relations"), edit1, reply1, 1, true)

	// An ignored user's replies count for nothing.
	alice.ok(t, "PUT", v3+"/user/"+url.PathEscape(alice.id)+"/account_data/m.ignored_user_list",
		map[string]any{"ignored_users": map[string]any{bob.id: map[string]any{}}})
	rel := messagesRel(alice)
	if rel.Get("m\\.thread").Exists() || rel.Get("m\\.reference").Exists() {
		t.Fatalf("an ignored user's children are aggregated: %s", rel.Raw)
	}

	// Redacting the original drops its m.replace.
	alice.redact(t, roomID, root)
	waitFor(t, "the root's redaction", func() bool {
		res := bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(root), nil)
		return res.Get("unsigned.redacted_because").Exists()
	})
	ev = bob.ok(t, "GET", room(roomID)+"/event/"+url.PathEscape(root), nil)
	if ev.Get("unsigned.m\\.relations.m\\.replace").Exists() {
		t.Fatalf("a redacted original still has its replacement bundled: %s", ev.Raw)
	}
}

// TestThreadsList: threads ordered by latest activity, paginated, and the
// participated filter.
func TestThreadsList(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	a1 := alice.send(t, roomID, "alice's first")
	b1 := bob.send(t, roomID, "bob's first")
	a2 := alice.send(t, roomID, "alice's second")
	b2 := bob.send(t, roomID, "bob's second")
	alice.send(t, roomID, "no thread here")
	bob.reply(t, roomID, a1, "on a1")
	bob.reply(t, roomID, b1, "on b1")
	bob.reply(t, roomID, a2, "on a2")
	alice.reply(t, roomID, b2, "alice on b2")
	last := bob.reply(t, roomID, a1, "a1 again") // a1 is now the most active

	list := func(u *user, params url.Values) []string {
		t.Helper()
		var all []string
		from := ""
		for page := 0; page < 20; page++ {
			q := url.Values{}
			for k, v := range params {
				q[k] = v
			}
			if from != "" {
				q.Set("from", from)
			}
			res := u.ok(t, "GET", roomV1(roomID)+"/threads?"+q.Encode(), nil)
			all = append(all, chunkIDs(res)...)
			if !res.Get("next_batch").Exists() {
				return all
			}
			from = res.Get("next_batch").Str
		}
		t.Fatal("threads pagination does not end")
		return nil
	}
	waitFor(t, "the threads", func() bool {
		res := alice.ok(t, "GET", roomV1(roomID)+"/threads", nil)
		return res.Get("chunk.0.unsigned.m\\.relations.m\\.thread.latest_event.event_id").Str == last
	})
	want := []string{a1, b2, a2, b1}
	for _, limit := range []string{"1", "2", "10"} {
		if got := list(alice, url.Values{"limit": {limit}}); !slices.Equal(got, want) {
			t.Fatalf("limit %s: %v, want %v", limit, got, want)
		}
	}
	// Alice sent a1 and a2 and replied in b2; bob replied everywhere but in
	// b2, which he started.
	if got := list(alice, url.Values{"include": {"participated"}}); !slices.Equal(got, []string{a1, b2, a2}) {
		t.Fatalf("alice participated: %v", got)
	}
	if got := list(bob, url.Values{"include": {"participated"}, "limit": {"1"}}); !slices.Equal(got, want) {
		t.Fatalf("bob participated: %v", got)
	}
	alice.fails(t, 400, "M_INVALID_PARAM", "GET", roomV1(roomID)+"/threads?include=some", nil)
	newUser(t, s, "dave").fails(t, 403, "M_FORBIDDEN", "GET", roomV1(roomID)+"/threads", nil)
}

// TestRelationsVisibility: in a room with joined-only history, a user who
// joins later cannot read the children of an event from before, and a user
// who left sees neither the children sent after they left nor counts that
// include them.
func TestRelationsVisibility(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	alice.setState(t, roomID, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	bob.join(t, roomID)
	root := alice.send(t, roomID, "root")
	early := alice.reply(t, roomID, root, "while bob is here")
	bob.leave(t, roomID)
	late := alice.reply(t, roomID, root, "after bob left")
	carol.join(t, roomID)
	waitFor(t, "the replies", func() bool { return len(alice.relations(t, roomID, root, "", nil)) == 2 })

	if got := alice.relations(t, roomID, root, "", url.Values{"dir": {"f"}}); !slices.Equal(got, []string{early, late}) {
		t.Fatalf("alice's view: %v", got)
	}
	if got := bob.relations(t, roomID, root, "", url.Values{"dir": {"f"}}); !slices.Equal(got, []string{early}) {
		t.Fatalf("bob's view after leaving: %v, want only %s", got, early)
	}
	res := bob.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=50", nil)
	th := bundled(res.Get("chunk"), root).Get("m\\.thread")
	if th.Get("count").Int() != 1 || th.Get("latest_event.event_id").Str != early {
		t.Fatalf("bob's thread summary leaks what was sent after he left: %s", th.Raw)
	}
	// Carol joined after the root: it does not exist for her.
	carol.fails(t, 404, "M_NOT_FOUND", "GET", roomV1(roomID)+"/relations/"+url.PathEscape(root), nil)
	res = carol.ok(t, "GET", room(roomID)+"/messages?dir=b&limit=50", nil)
	for _, ev := range res.Get("chunk").Array() {
		if id := ev.Get("event_id").Str; id == root || id == early || id == late {
			t.Fatalf("carol sees %s, sent before she joined", id)
		}
	}
}

// TestRelationSendChecks: the server refuses a second identical annotation
// (M_DUPLICATE_ANNOTATION) until the first is redacted, but not a retry of
// the transaction that sent it, nor another key, type or sender; and it
// refuses a thread started from a thread reply or from an edit (400
// M_UNKNOWN, as threading.md asks), but not a reply in an existing thread.
func TestRelationSendChecks(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.join(t, roomID)
	root := alice.send(t, roomID, "root")

	thumbs := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}}
	sendPath := func(evType, txn string) string {
		return room(roomID) + "/send/" + url.PathEscape(evType) + "/" + txn
	}
	first := alice.ok(t, "PUT", sendPath("m.reaction", "dup1"), thumbs).Get("event_id").Str
	alice.fails(t, 400, "M_DUPLICATE_ANNOTATION", "PUT", sendPath("m.reaction", "dup2"), thumbs)
	if again := alice.ok(t, "PUT", sendPath("m.reaction", "dup1"), thumbs).Get("event_id").Str; again != first {
		t.Fatalf("retried transaction: %s, want the first event %s", again, first)
	}
	bob.react(t, roomID, root, "👍")   // another sender
	alice.react(t, roomID, root, "👎") // another key
	alice.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": "👍",
		"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}}) // another type
	alice.redact(t, roomID, first)
	waitFor(t, "the redaction to free the annotation", func() bool {
		status, _ := alice.do(t, "PUT", sendPath("m.reaction", "dup3"), thumbs)
		return status == 200
	})

	reply := bob.reply(t, roomID, root, "in the thread")
	bob.reply(t, roomID, root, "again in the thread")
	edit := alice.edit(t, roomID, root, "root, edited")
	for i, parent := range []string{reply, edit} {
		alice.fails(t, 400, "M_UNKNOWN", "PUT", sendPath("m.room.message", fmt.Sprint("nested", i)), map[string]any{
			"msgtype": "m.text", "body": "nested", "m.relates_to": relatesTo("m.thread", parent)})
	}
}

// A child received late over federation (backfilled, stored below every
// other position) is listed by /relations in both directions: the bound
// of an unbounded direction is below every position, not 0.
func TestRelationsOfBackfilledHistory(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	root := alice.send(t, roomID, "root")
	recent := alice.reply(t, roomID, root, "a recent reply")
	evs, state := historical(t, s, alice.id, roomID, root, map[string]any{"msgtype": "m.text", "body": "a late reply",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
	if n, err := s.Roomserver().InputHistorical(context.Background(), roomID, evs, state); err != nil || n != 1 {
		t.Fatalf("InputHistorical: %d, %v", n, err)
	}
	late := evs[0].EventID()
	if got := alice.relations(t, roomID, root, "", url.Values{"limit": {"1"}}); !slices.Equal(got, []string{recent, late}) {
		t.Errorf("backwards: %v, want %s then %s", got, recent, late)
	}
	if got := alice.relations(t, roomID, root, "/m.thread", url.Values{"dir": {"f"}, "limit": {"1"}}); !slices.Equal(got, []string{late, recent}) {
		t.Errorf("forwards: %v, want %s then %s", got, late, recent)
	}
}
