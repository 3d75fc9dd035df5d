package federation_test

// Three Myelin servers in one room over real HTTPS: convergence of the
// timeline and of the resolved state under concurrent sends and
// conflicting state changes, an outage and catch-up, forged and
// unauthorised events relayed between servers, kicks and bans.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// trio is a public room created by alice on A that bob of B and carol of
// C joined through the client API (make_join/send_join to A). alice has
// power 100, bob 50 (enough to kick and ban), carol the default 0.
type trio struct {
	srv    [3]*servertest.Server
	user   [3]string // alice, bob, carol
	token  [3]string
	roomID string
}

const alice, bob, carol = 0, 1, 2

func newTrio(t *testing.T) *trio {
	t.Helper()
	servers := servertest.Start(t, 3)
	tr := &trio{}
	copy(tr.srv[:], servers)
	for i, name := range []string{"alice", "bob", "carol"} {
		tr.user[i], tr.token[i] = tr.srv[i].RegisterUser(t, name)
	}
	var created struct {
		RoomID string `json:"room_id"`
	}
	tr.srv[alice].DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", tr.token[alice], map[string]any{
		"preset": "public_chat",
		"power_level_content_override": map[string]any{
			"users": map[string]int{tr.user[alice]: 100, tr.user[bob]: 50},
		},
	}, &created)
	tr.roomID = created.RoomID
	for _, i := range []int{bob, carol} {
		tr.srv[i].DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(tr.roomID)+"?via="+url.QueryEscape(tr.srv[alice].Name),
			tr.token[i], map[string]any{}, nil)
	}
	// Every server knows every member before the test begins.
	for _, s := range tr.srv {
		for _, u := range tr.user {
			eventually(t, fmt.Sprintf("%s joined on %s", u, s.Name), func() bool { return membershipOn(t, s, tr.roomID, u) == "join" })
		}
	}
	return tr
}

// send sends a message as user i through its server's client API. It is
// safe in goroutines: it returns errors instead of failing the test.
func (tr *trio) send(ctx context.Context, i int, body string) (string, error) {
	path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%d", url.PathEscape(tr.roomID), time.Now().UnixNano())
	return tr.put(ctx, i, path, map[string]any{"msgtype": "m.text", "body": body})
}

// setState sends a state event as user i; goroutine-safe like send.
func (tr *trio) setState(ctx context.Context, i int, evType, stateKey string, content any) (string, error) {
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(tr.roomID) + "/state/" + evType + "/" + url.PathEscape(stateKey)
	return tr.put(ctx, i, path, content)
}

func (tr *trio) put(ctx context.Context, i int, path string, content any) (string, error) {
	return clientCall(ctx, tr.srv[i], http.MethodPut, path, tr.token[i], content)
}

// clientCall makes one client API request and returns the event_id of
// its answer.
func clientCall(ctx context.Context, s *servertest.Server, method, path, token string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.ClientURL+path, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

// must(t)(id, err) is id, or the test's end if err is not nil.
func must(t *testing.T) func(string, error) string {
	return func(id string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// holds says whether s holds the event in the room's timeline (stored,
// neither rejected nor soft-failed nor an outlier).
func holds(t *testing.T, s *servertest.Server, eventID string) bool {
	t.Helper()
	se, err := s.Roomserver().Event(ctxT(t), eventID)
	if errors.Is(err, roomserver.ErrEventNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return se.StreamPos != 0
}

// stored returns the event as s stores it, or nil.
func stored(t *testing.T, s *servertest.Server, eventID string) *roomserver.StoredEvent {
	t.Helper()
	se, err := s.Roomserver().Event(ctxT(t), eventID)
	if errors.Is(err, roomserver.ErrEventNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return se
}

// currentState returns the IDs of the room's current state events on s,
// sorted.
func currentState(t *testing.T, s *servertest.Server, roomID string) []string {
	t.Helper()
	evs, err := s.Roomserver().CurrentState(ctxT(t), roomID)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID()
	}
	slices.Sort(ids)
	return ids
}

// memberEventID returns the ID of userID's current member event on s.
func memberEventID(t *testing.T, s *servertest.Server, roomID, userID string) string {
	t.Helper()
	ev, err := s.Roomserver().MembershipEvent(ctxT(t), roomID, userID)
	if err != nil || ev == nil {
		t.Fatalf("%s's member event on %s: %v", userID, s.Name, err)
	}
	return ev.EventID()
}

// sameState fails the test unless every server holds the same current
// state of the room, and returns it.
func (tr *trio) sameState(t *testing.T) []string {
	t.Helper()
	want := currentState(t, tr.srv[alice], tr.roomID)
	for _, i := range []int{bob, carol} {
		if got := currentState(t, tr.srv[i], tr.roomID); !slices.Equal(got, want) {
			t.Fatalf("current state differs:\n A: %v\n %c: %v", want, 'A'+i, got)
		}
	}
	return want
}

// timelineMessages pages user i's /messages backwards through the whole
// room and returns the IDs of its m.room.message events.
func (tr *trio) timelineMessages(t *testing.T, i int) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	from := ""
	for range 50 {
		q := url.Values{"dir": {"b"}, "limit": {"100"}}
		if from != "" {
			q.Set("from", from)
		}
		var page struct {
			Chunk []struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			} `json:"chunk"`
			End string `json:"end"`
		}
		tr.srv[i].DoJSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(tr.roomID)+"/messages?"+q.Encode(), tr.token[i], nil, &page)
		for _, ev := range page.Chunk {
			if ev.Type == "m.room.message" {
				ids[ev.EventID] = true
			}
		}
		if page.End == "" || len(page.Chunk) == 0 {
			return ids
		}
		from = page.End
	}
	t.Fatalf("user %d's /messages did not end within 50 pages", i)
	return nil
}

// waitAllHold waits until every server holds every one of ids in the
// room's timeline.
func (tr *trio) waitAllHold(t *testing.T, what string, ids []string) {
	t.Helper()
	for _, s := range tr.srv {
		eventually(t, fmt.Sprintf("%s on %s", what, s.Name), func() bool {
			for _, id := range ids {
				if !holds(t, s, id) {
					return false
				}
			}
			return true
		})
	}
}

// A room spanning three servers converges: after messages sent at once by
// users of all three, each server holds every message in its timeline,
// each user's /messages lists the same set, and the current state (which
// each server resolved over its own forks of the DAG) is the same.
func TestThreeServersConverge(t *testing.T) {
	tr := newTrio(t)
	const perUser = 10
	var (
		mu   sync.Mutex
		sent []string
		wg   sync.WaitGroup
		errs = make(chan error, 3)
	)
	ctx := ctxT(t)
	start := make(chan struct{})
	for i := range tr.srv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for n := range perUser {
				id, err := tr.send(ctx, i, fmt.Sprintf("%d from %d", n, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent = append(sent, id)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tr.waitAllHold(t, "every message", sent)

	// The concurrent sends made forks: some event has several prev
	// events, on some server. (Not asserted: a fast machine may
	// serialise them; the convergence below holds either way.)
	forks := 0
	for _, id := range sent {
		if len(stored(t, tr.srv[alice], id).Event.PrevEventIDs()) > 1 {
			forks++
		}
	}
	t.Logf("%d of %d messages merged forks", forks, len(sent))

	want := map[string]bool{}
	for _, id := range sent {
		want[id] = true
	}
	for i := range tr.srv {
		if got := tr.timelineMessages(t, i); !mapsEqual(got, want) {
			t.Fatalf("user %d's /messages holds %d messages, want the %d sent: %v", i, len(got), len(want), got)
		}
	}
	tr.sameState(t)

	// A state change after the forks still converges.
	name := must(t)(tr.setState(ctx, bob, "m.room.topic", "", map[string]string{"topic": "three servers"}))
	tr.waitAllHold(t, "carol's topic", []string{name})
	if st := tr.sameState(t); !slices.Contains(st, name) {
		t.Fatalf("the topic %s is not in the current state %v", name, st)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// A ban racing a power-level change: alice (power 100) on A takes bob's
// power away while bob (power 50) on B bans carol, both at once. Where the
// two events fork, state resolution v2 orders alice's change first (her
// power is higher), so bob's ban fails the iterative auth checks and carol
// stays in the room. Every server ends with the same state.
func TestBanRacingPowerLevelsResolvesIdentically(t *testing.T) {
	tr := newTrio(t)
	ctx := ctxT(t)
	var pl, ban string
	var plErr, banErr error
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-start
		pl, plErr = tr.setState(ctx, alice, "m.room.power_levels", "", map[string]any{
			"users": map[string]int{tr.user[alice]: 100},
		})
	}()
	go func() {
		defer wg.Done()
		<-start
		// A ban through the state endpoint, which (unlike /ban) answers
		// with the event ID.
		ban, banErr = tr.setState(ctx, bob, "m.room.member", tr.user[carol], map[string]string{"membership": "ban", "reason": "race"})
	}()
	close(start)
	wg.Wait()
	if plErr != nil {
		t.Fatal(plErr)
	}
	if banErr != nil {
		// B saw alice's change first and refused the ban locally: no race
		// this time, nothing to resolve.
		t.Skipf("no race: B refused the ban after alice's change arrived: %v", banErr)
	}

	// Both events reach every server (stored; the ban may be soft-failed
	// where alice's change came first).
	for _, s := range tr.srv {
		eventually(t, "both events on "+s.Name, func() bool {
			return stored(t, s, pl) != nil && stored(t, s, ban) != nil
		})
	}
	plEv, banEv := stored(t, tr.srv[alice], pl).Event, stored(t, tr.srv[bob], ban).Event
	forked := !slices.Contains(plEv.PrevEventIDs(), ban) && !slices.Contains(banEv.PrevEventIDs(), pl)
	t.Logf("forked: %v", forked)
	st := tr.sameState(t)

	// The resolved state is the one the spec's algorithm gives.
	wantCarol := "join" // alice's change first: the ban fails auth
	if slices.Contains(plEv.PrevEventIDs(), ban) {
		wantCarol = "ban" // alice changed the power levels after the ban
	}
	for _, s := range tr.srv {
		if m := membershipOn(t, s, tr.roomID, tr.user[carol]); m != wantCarol {
			t.Fatalf("carol's membership on %s is %q, want %q (state %v)", s.Name, m, wantCarol, st)
		}
	}
	if !slices.Contains(st, pl) {
		t.Fatalf("alice's power levels %s are not in the current state %v", pl, st)
	}

	// A message merging the forks keeps every server on the same state.
	sender := alice
	if wantCarol == "join" {
		sender = carol
	}
	msg := must(t)(tr.send(ctx, sender, "after the race"))
	tr.waitAllHold(t, "the message after the race", []string{msg})
	if after := tr.sameState(t); !slices.Equal(after, st) {
		t.Fatalf("the state changed with a message: %v, was %v", after, st)
	}
}

// One server stopped while the others talk, then restarted: the senders
// of the others retry after their backoff, and the restarted server gets
// every event (more than the catch-up threshold from A, so A sends only
// its latest and C fetches the gap), which its user then sees.
func TestStoppedServerCatchesUp(t *testing.T) {
	tr := newTrio(t)
	ctx := ctxT(t)
	c := tr.srv[carol]
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for n := range 60 {
		sent = append(sent, must(t)(tr.send(ctx, alice, fmt.Sprint("while C is down ", n))))
	}
	for n := range 5 {
		sent = append(sent, must(t)(tr.send(ctx, bob, fmt.Sprint("bob while C is down ", n))))
	}
	for _, i := range []int{alice, bob} {
		for _, id := range sent {
			if !holds(t, tr.srv[i], id) {
				eventually(t, fmt.Sprintf("%s on server %d", id, i), func() bool { return holds(t, tr.srv[i], id) })
			}
		}
	}
	c.Restart(t)
	// No sleep: the senders' first retry is due 5 s after the failure.
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, id := range sent {
			if !holds(t, c, id) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C still lacks %d of %d events 30 s after its restart", missing, len(sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := tr.timelineMessages(t, carol)
	for _, id := range sent {
		if !got[id] {
			t.Fatalf("carol's /messages on C lacks %s", id)
		}
	}
	// And C takes part again: carol's message reaches A and B.
	msg := must(t)(tr.send(ctx, carol, "back"))
	tr.waitAllHold(t, "carol's message after the restart", []string{msg})
	tr.sameState(t)
}

// buildAs builds an event of server s's user in the room on top of
// prev (an event s holds), with auth events from s's current state.
func (tr *trio) buildAs(t *testing.T, s *servertest.Server, sender, evType string, stateKey *string, content any, prev string) *pdu.Event {
	t.Helper()
	ctx := ctxT(t)
	rs := s.Roomserver()
	ver, err := rs.RoomVersion(ctx, tr.roomID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(content)
	if err != nil {
		t.Fatal(err)
	}
	var authIDs []string
	for _, k := range auth.SelectAuthEvents(ver, evType, stateKey, sender, raw) {
		if ev, _ := rs.CurrentStateEvent(ctx, tr.roomID, k); ev != nil {
			authIDs = append(authIDs, ev.EventID())
		}
	}
	p := stored(t, s, prev)
	if p == nil {
		t.Fatalf("%s does not hold %s", s.Name, prev)
	}
	keyID, key := s.Keys().Current()
	ev, err := pdu.ProtoEvent{Type: evType, StateKey: stateKey, Sender: sender, RoomID: tr.roomID, Content: raw,
		PrevEvents: []string{prev}, AuthEvents: authIDs, Depth: p.Event.Depth() + 1,
		OriginServerTS: time.Now().UnixMilli()}.Build(ver, s.Name, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// sendPDU sends one PDU in a transaction from server from to server to
// and returns the PDU's result ("" when accepted, else the error).
func sendPDU(t *testing.T, from, to *servertest.Server, raw json.RawMessage, eventID string) string {
	t.Helper()
	var out struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	txn := map[string]any{"origin": from.Name, "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{raw}}
	err := from.SignedFederationClient().DoJSON(ctxT(t), http.MethodPut, to.Name,
		fmt.Sprintf("/_matrix/federation/v1/send/t%d", time.Now().UnixNano()), txn, &out)
	if err != nil {
		t.Fatalf("/send from %s to %s: %v", from.Name, to.Name, err)
	}
	r, ok := out.PDUs[eventID]
	if !ok {
		t.Fatalf("/send from %s to %s: no result for %s: %+v", from.Name, to.Name, eventID, out.PDUs)
	}
	return r.Error
}

// Events that one server relays for another, or sends for itself, that
// the spec says to refuse, redact, reject or soft-fail.
func TestBadEventsAcrossServers(t *testing.T) {
	tr := newTrio(t)
	ctx := ctxT(t)
	a, b, c := tr.srv[alice], tr.srv[bob], tr.srv[carol]
	last := must(t)(tr.send(ctx, alice, "before"))
	tr.waitAllHold(t, "alice's message", []string{last})

	// (1) A relays carol's message (signed by C) to B with its content
	// changed after signing. The signatures cover the redacted form, so
	// they still verify; the content hash does not: B keeps the event,
	// redacted, under the same event ID.
	orig := tr.buildAs(t, c, tr.user[carol], "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "the original"}, last)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(orig.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["content"] = json.RawMessage(`{"msgtype":"m.text","body":"tampered by A"}`)
	tampered, _ := json.Marshal(m)
	if e := sendPDU(t, a, b, tampered, orig.EventID()); e != "" {
		t.Fatalf("a PDU with a bad content hash: %q, want it accepted redacted", e)
	}
	se := stored(t, b, orig.EventID())
	if se == nil || se.StreamPos == 0 {
		t.Fatalf("B does not hold the redacted event in the timeline: %+v", se)
	}
	if body := string(se.Event.Content()); strings.Contains(body, "tampered") || strings.Contains(body, "original") {
		t.Fatalf("B stored the content %s of an event whose hash does not match", body)
	}
	var ev struct {
		Content map[string]any `json:"content"`
	}
	b.DoJSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(tr.roomID)+"/event/"+url.PathEscape(orig.EventID()), tr.token[bob], nil, &ev)
	if len(ev.Content) != 0 {
		t.Fatalf("bob sees the content %v of the event with a bad hash", ev.Content)
	}

	// (2) A sends an event claiming to be carol's, signed by A alone: the
	// sender's server (C) has not signed it, so B refuses it and stores
	// nothing.
	forged := tr.buildAs(t, a, tr.user[carol], "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "not carol"}, last)
	if e := sendPDU(t, a, b, forged.JSON(), forged.EventID()); e == "" {
		t.Fatal("an event of C's user signed only by A was accepted")
	}
	if stored(t, b, forged.EventID()) != nil {
		t.Fatal("B stored an event its sender's server never signed")
	}

	// (3) C sends, for its own user, an event that fails the auth rules
	// against its auth events (carol, power 0, makes herself an admin):
	// A and B reject it, keep it out of the timeline and the state.
	empty := ""
	grab := tr.buildAs(t, c, tr.user[carol], "m.room.power_levels", &empty,
		map[string]any{"users": map[string]int{tr.user[alice]: 100, tr.user[carol]: 100}}, last)
	for _, s := range []*servertest.Server{a, b} {
		if e := sendPDU(t, c, s, grab.JSON(), grab.EventID()); !strings.HasPrefix(e, "rejected") {
			t.Fatalf("carol's power grab on %s: %q, want rejected", s.Name, e)
		}
		if se := stored(t, s, grab.EventID()); se == nil || !se.Rejected || se.StreamPos != 0 {
			t.Fatalf("carol's power grab on %s is stored as %+v, want rejected", s.Name, se)
		}
		if slices.Contains(currentState(t, s, tr.roomID), grab.EventID()) {
			t.Fatalf("the rejected power levels are current on %s", s.Name)
		}
	}

	// (4) Soft failure: C built carol's message before alice banned her
	// and sends it after. It passes auth against its auth events and the
	// state before it (carol was joined there) but not against the
	// current state: A and B store it soft-failed, out of the timeline
	// their users see.
	late := tr.buildAs(t, c, tr.user[carol], "m.room.message", nil, map[string]string{"msgtype": "m.text", "body": "sent late"}, last)
	tr.srv[alice].DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(tr.roomID)+"/ban", tr.token[alice],
		map[string]string{"user_id": tr.user[carol]}, nil)
	for _, s := range []*servertest.Server{a, b} {
		eventually(t, "carol's ban on "+s.Name, func() bool { return membershipOn(t, s, tr.roomID, tr.user[carol]) == "ban" })
		sendPDU(t, c, s, late.JSON(), late.EventID())
		se := stored(t, s, late.EventID())
		if se == nil || !se.SoftFailed || se.StreamPos != 0 {
			t.Fatalf("carol's late message on %s is stored as %+v, want soft-failed", s.Name, se)
		}
	}
	for _, i := range []int{alice, bob} {
		if tr.timelineMessages(t, i)[late.EventID()] {
			t.Fatalf("user %d sees the soft-failed message", i)
		}
	}
}

// Kicks and bans across servers: alice on A kicks bob of B (B learns it
// although it then has no one in the room), bob rejoins, alice bans him
// and his rejoin is refused; bob, while he has the power, bans carol of C
// from B, and every server agrees.
func TestRemoteKickAndBan(t *testing.T) {
	tr := newTrio(t)
	ctx := ctxT(t)
	a, b := tr.srv[alice], tr.srv[bob]
	roomPath := "/_matrix/client/v3/rooms/" + url.PathEscape(tr.roomID)

	// bob (power 50) bans carol from B.
	must(t)(clientCall(ctx, b, http.MethodPost, roomPath+"/ban", tr.token[bob], map[string]string{"user_id": tr.user[carol], "reason": "spam"}))
	ban := memberEventID(t, b, tr.roomID, tr.user[carol])
	for _, s := range tr.srv {
		eventually(t, "carol banned on "+s.Name, func() bool { return membershipOn(t, s, tr.roomID, tr.user[carol]) == "ban" })
	}
	if se := stored(t, tr.srv[carol], ban); se == nil || se.StreamPos == 0 {
		t.Fatalf("C does not hold the ban in the timeline: %+v", se)
	}
	status, body := tr.srv[carol].Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(tr.roomID)+"?via="+url.QueryEscape(a.Name), tr.token[carol], map[string]any{})
	if status != http.StatusForbidden {
		t.Fatalf("banned carol rejoining: %d %s", status, body)
	}

	// alice kicks bob; B hears of it and bob's sync shows the room left.
	must(t)(clientCall(ctx, a, http.MethodPost, roomPath+"/kick", tr.token[alice], map[string]string{"user_id": tr.user[bob], "reason": "cool down"}))
	eventually(t, "bob kicked on B", func() bool { return membershipOn(t, b, tr.roomID, tr.user[bob]) == "leave" })
	var left initialSync
	b.DoJSON(t, http.MethodGet, "/_matrix/client/v3/sync?filter="+url.QueryEscape(`{"room":{"include_leave":true}}`), tr.token[bob], nil, &left)
	if _, ok := left.Rooms.Leave[tr.roomID]; !ok {
		t.Fatal("bob's sync on B does not show the room left after the kick")
	}
	// A kick is not a ban: bob rejoins through A.
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(tr.roomID)+"?via="+url.QueryEscape(a.Name), tr.token[bob], map[string]any{}, nil)
	if m := membershipOn(t, a, tr.roomID, tr.user[bob]); m != "join" {
		t.Fatalf("bob's membership on A after rejoining is %q", m)
	}

	// alice bans bob; he cannot come back.
	must(t)(clientCall(ctx, a, http.MethodPost, roomPath+"/ban", tr.token[alice], map[string]string{"user_id": tr.user[bob]}))
	eventually(t, "bob banned on B", func() bool { return membershipOn(t, b, tr.roomID, tr.user[bob]) == "ban" })
	status, body = b.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(tr.roomID)+"?via="+url.QueryEscape(a.Name), tr.token[bob], map[string]any{})
	if status != http.StatusForbidden {
		t.Fatalf("banned bob rejoining: %d %s", status, body)
	}
	if m := membershipOn(t, a, tr.roomID, tr.user[bob]); m != "ban" {
		t.Fatalf("bob's membership on A after the refused rejoin is %q", m)
	}
	msg := must(t)(tr.send(ctx, alice, "peace and quiet"))
	eventually(t, "alice's message on A", func() bool { return holds(t, a, msg) })
	for _, i := range []int{bob, carol} {
		if holds(t, tr.srv[i], msg) {
			t.Fatalf("server %d, with its user banned, got the message after the ban", i)
		}
	}
}
