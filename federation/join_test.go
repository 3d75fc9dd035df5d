package federation_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// eventually polls cond until it holds, failing the test after 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// membershipOn returns userID's membership of the room as server s holds it.
func membershipOn(t *testing.T, s *servertest.Server, roomID, userID string) string {
	t.Helper()
	m, err := s.Roomserver().Membership(ctxT(t), roomID, userID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// initialSync is one user's initial /sync, decoded loosely.
type initialSync struct {
	Rooms struct {
		Join map[string]struct {
			State    struct{ Events []syncEvent } `json:"state"`
			Timeline struct{ Events []syncEvent } `json:"timeline"`
		} `json:"join"`
		Invite map[string]struct {
			InviteState struct{ Events []syncEvent } `json:"invite_state"`
		} `json:"invite"`
		Knock map[string]struct {
			KnockState struct{ Events []syncEvent } `json:"knock_state"`
		} `json:"knock"`
		Leave map[string]json.RawMessage `json:"leave"`
	} `json:"rooms"`
}

type syncEvent struct {
	Type     string          `json:"type"`
	StateKey *string         `json:"state_key"`
	Sender   string          `json:"sender"`
	Content  json.RawMessage `json:"content"`
}

func doSync(t *testing.T, s *servertest.Server, token string) initialSync {
	t.Helper()
	var out initialSync
	s.DoJSON(t, http.MethodGet, "/_matrix/client/v3/sync", token, nil, &out)
	return out
}

func hasEvent(evs []syncEvent, evType, stateKey string) bool {
	return slices.ContainsFunc(evs, func(e syncEvent) bool {
		return e.Type == evType && e.StateKey != nil && *e.StateKey == stateKey
	})
}

// A user of B joins a room on A by its alias (resolved by asking A), gets
// the room's state in /sync, chats both ways, leaves, and rejoins by room
// ID through A.
func TestRemoteJoinByAliasChatLeaveRejoin(t *testing.T) {
	ro := newRoomOnA(t) // alice's public room #chat on A, 3 messages
	aliceID := "@alice:" + ro.a.Name
	bobID, bobToken := ro.b.RegisterUser(t, "bob")

	start := time.Now()
	var joined struct {
		RoomID string `json:"room_id"`
	}
	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(ro.alias), bobToken, map[string]any{}, &joined)
	t.Logf("remote join of a room of 1 member: %v", time.Since(start))
	if joined.RoomID != ro.roomID {
		t.Fatalf("joined %s, want %s", joined.RoomID, ro.roomID)
	}
	if m := membershipOn(t, ro.a, ro.roomID, bobID); m != "join" {
		t.Fatalf("bob's membership on A is %q", m)
	}
	if m := membershipOn(t, ro.b, ro.roomID, aliceID); m != "join" {
		t.Fatalf("alice's membership on B is %q", m)
	}

	// bob's first sync on B shows the room with its state.
	s := doSync(t, ro.b, bobToken)
	room, ok := s.Rooms.Join[ro.roomID]
	if !ok {
		t.Fatalf("bob's sync on B has no joined room %s", ro.roomID)
	}
	for _, k := range [][2]string{{"m.room.create", ""}, {"m.room.join_rules", ""}, {"m.room.power_levels", ""}, {"m.room.member", aliceID}} {
		if !hasEvent(room.State.Events, k[0], k[1]) && !hasEvent(room.Timeline.Events, k[0], k[1]) {
			t.Errorf("bob's sync lacks %s/%s", k[0], k[1])
		}
	}
	if !hasEvent(room.Timeline.Events, "m.room.member", bobID) {
		t.Errorf("bob's sync timeline lacks his join: %+v", room.Timeline.Events)
	}

	// Messages both ways.
	aliceSync := startSyncer(t, ro.a, ro.token, ro.roomID)
	bobSync := startSyncer(t, ro.b, bobToken, ro.roomID)
	var sent struct {
		EventID string `json:"event_id"`
	}
	ro.b.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(ro.roomID)+"/send/m.room.message/b1",
		bobToken, map[string]any{"msgtype": "m.text", "body": "hi from B"}, &sent)
	if got := aliceSync.next(t, "bob's message on A"); got.ID != sent.EventID || got.Body != "hi from B" {
		t.Fatalf("alice got %+v, want %s", got, sent.EventID)
	}
	if got := bobSync.next(t, "bob's own message"); got.ID != sent.EventID {
		t.Fatalf("bob got %+v", got)
	}
	id := ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "hi from A"})
	if got := bobSync.next(t, "alice's message on B"); got.ID != id {
		t.Fatalf("bob got %+v, want %s", got, id)
	}

	// bob leaves: B is in the room, so the leave is an ordinary event that
	// B's sender delivers.
	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(ro.roomID)+"/leave", bobToken, map[string]any{}, nil)
	eventually(t, "bob's leave on A", func() bool { return membershipOn(t, ro.a, ro.roomID, bobID) == "leave" })

	// B holds the room but is no longer in it: rejoining goes through A.
	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(ro.roomID)+"/join?server_name="+url.QueryEscape(ro.a.Name),
		bobToken, map[string]any{}, nil)
	if m := membershipOn(t, ro.a, ro.roomID, bobID); m != "join" {
		t.Fatalf("bob's membership on A after rejoining is %q", m)
	}
	id = ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "welcome back"})
	eventually(t, "alice's message on B after the rejoin", func() bool {
		_, err := ro.b.Roomserver().Event(ctxT(t), id)
		return err == nil
	})
}

// Invites across servers: alice on A invites two users of B into a
// private room; one accepts (joining through the inviter's server without
// being told any), the other rejects.
func TestRemoteInviteAcceptAndReject(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	charlieID, charlieToken := b.RegisterUser(t, "charlie")
	daveID, daveToken := b.RegisterUser(t, "dave")
	var created struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken,
		map[string]any{"preset": "private_chat", "name": "secret plans"}, &created)
	roomID := created.RoomID
	for _, u := range []string{charlieID, daveID} {
		a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/invite", aliceToken,
			map[string]any{"user_id": u}, nil)
		if m := membershipOn(t, a, roomID, u); m != "invite" {
			t.Fatalf("%s's membership on A is %q", u, m)
		}
	}

	// charlie's sync on B shows the invite with the room's stripped state.
	s := doSync(t, b, charlieToken)
	inv, ok := s.Rooms.Invite[roomID]
	if !ok {
		t.Fatalf("charlie's sync has no invite to %s", roomID)
	}
	for _, k := range [][2]string{{"m.room.create", ""}, {"m.room.join_rules", ""}, {"m.room.name", ""}, {"m.room.member", charlieID}} {
		if !hasEvent(inv.InviteState.Events, k[0], k[1]) {
			t.Errorf("charlie's invite_state lacks %s/%s: %+v", k[0], k[1], inv.InviteState.Events)
		}
	}
	if len(s.Rooms.Join) != 0 {
		t.Errorf("charlie is in rooms already: %v", s.Rooms.Join)
	}

	// charlie accepts: B asks the inviter's server.
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/join", charlieToken, map[string]any{}, nil)
	if m := membershipOn(t, a, roomID, charlieID); m != "join" {
		t.Fatalf("charlie's membership on A is %q", m)
	}
	if _, ok := doSync(t, b, charlieToken).Rooms.Join[roomID]; !ok {
		t.Fatalf("charlie's sync has not joined %s", roomID)
	}

	// dave rejects. B is in the room now (charlie), so the rejection is
	// an ordinary leave; B's sender takes it to A.
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/leave", daveToken, map[string]any{}, nil)
	eventually(t, "dave's rejection on A", func() bool { return membershipOn(t, a, roomID, daveID) == "leave" })
	if _, ok := doSync(t, b, daveToken).Rooms.Invite[roomID]; ok {
		t.Errorf("dave's sync still shows the invite after rejecting it")
	}
}

// Rejecting an invite to a room no user of this server is in goes
// through the inviting server (make_leave/send_leave).
func TestRejectRemoteInviteOutOfBand(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	daveID, daveToken := b.RegisterUser(t, "dave")
	var created struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{"preset": "private_chat"}, &created)
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(created.RoomID)+"/invite", aliceToken,
		map[string]any{"user_id": daveID}, nil)
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(created.RoomID)+"/leave", daveToken, map[string]any{"reason": "no thanks"}, nil)
	if m := membershipOn(t, a, created.RoomID, daveID); m != "leave" {
		t.Fatalf("dave's membership on A is %q", m)
	}
	if m := membershipOn(t, b, created.RoomID, daveID); m != "leave" {
		t.Fatalf("dave's membership on B is %q", m)
	}
	s := doSync(t, b, daveToken)
	if _, ok := s.Rooms.Invite[created.RoomID]; ok {
		t.Errorf("the rejected invite is still in dave's sync")
	}
}

// Knocking on a room of another server, then being let in.
func TestRemoteKnock(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	eveID, eveToken := b.RegisterUser(t, "eve")
	var created struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{
		"preset": "private_chat", "name": "knock knock",
		"initial_state": []any{map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{"join_rule": "knock"}}},
	}, &created)
	roomID := created.RoomID
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/knock/"+url.PathEscape(roomID)+"?via="+url.QueryEscape(a.Name), eveToken,
		map[string]any{"reason": "let me in"}, nil)
	if m := membershipOn(t, a, roomID, eveID); m != "knock" {
		t.Fatalf("eve's membership on A is %q", m)
	}
	s := doSync(t, b, eveToken)
	k, ok := s.Rooms.Knock[roomID]
	if !ok || !hasEvent(k.KnockState.Events, "m.room.name", "") || !hasEvent(k.KnockState.Events, "m.room.member", eveID) {
		t.Fatalf("eve's sync lacks the knock with the room's stripped state: %+v", s.Rooms.Knock)
	}
	// alice lets her in; eve joins through A.
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/invite", aliceToken, map[string]any{"user_id": eveID}, nil)
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/join", eveToken, map[string]any{}, nil)
	if m := membershipOn(t, a, roomID, eveID); m != "join" {
		t.Fatalf("eve's membership on A after the invite is %q", m)
	}
}

// The resident server's refusal reaches the client: an invite-only room
// refuses a join with 403 M_FORBIDDEN, an unknown room 404.
func TestRemoteJoinRefused(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	_, bobToken := b.RegisterUser(t, "bob")
	var created struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{"preset": "private_chat"}, &created)
	status, body := b.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(created.RoomID)+"?via="+url.QueryEscape(a.Name), bobToken, map[string]any{})
	if status != http.StatusForbidden || !json.Valid(body) || string(mustField(t, body, "errcode")) != `"M_FORBIDDEN"` {
		t.Fatalf("joining an invite-only room: %d %s", status, body)
	}
	status, body = b.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape("!nope:"+a.Name), bobToken, map[string]any{})
	if status != http.StatusNotFound {
		t.Fatalf("joining an unknown room: %d %s", status, body)
	}
	if m := membershipOn(t, b, created.RoomID, "@bob:"+b.Name); m != "" {
		t.Fatalf("bob's refused join left membership %q on B", m)
	}
}

func mustField(t *testing.T, body []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}

// A user who joined a room on another server pages back past his join:
// /messages fetches the older history from A (/backfill) and returns it
// in order, without repeats, down to the room's creation.
func TestMessagesBackfillsFromRemote(t *testing.T) {
	ro := newRoomOnA(t) // 3 messages
	for i := 3; i < 40; i++ {
		ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": fmt.Sprint("hello ", i)})
	}
	_, bobToken := ro.b.RegisterUser(t, "bob")
	ro.b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(ro.roomID)+"?via="+url.QueryEscape(ro.a.Name), bobToken, map[string]any{}, nil)

	type page struct {
		End   string `json:"end"`
		Chunk []struct {
			EventID  string  `json:"event_id"`
			Type     string  `json:"type"`
			StateKey *string `json:"state_key"`
			Content  struct {
				Body string `json:"body"`
			} `json:"content"`
		} `json:"chunk"`
	}
	var bodies []string
	seen := map[string]bool{}
	var types []string
	from := ""
	for range 10 {
		q := url.Values{"dir": {"b"}, "limit": {"15"}}
		if from != "" {
			q.Set("from", from)
		}
		var p page
		ro.b.DoJSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(ro.roomID)+"/messages?"+q.Encode(), bobToken, nil, &p)
		for _, ev := range p.Chunk {
			if seen[ev.EventID] {
				t.Fatalf("event %s returned twice", ev.EventID)
			}
			seen[ev.EventID] = true
			types = append(types, ev.Type)
			if ev.Type == "m.room.message" {
				bodies = append(bodies, ev.Content.Body)
			}
		}
		if len(p.Chunk) == 0 || p.End == "" {
			break
		}
		from = p.End
	}
	if len(types) == 0 || types[0] != "m.room.member" {
		t.Fatalf("the newest event bob sees is %v, want his join", types)
	}
	if types[len(types)-1] != "m.room.create" {
		t.Fatalf("paging back did not reach the room's creation: %v", types)
	}
	if len(bodies) != 40 {
		t.Fatalf("bob read %d messages, want 40: %v", len(bodies), bodies)
	}
	for i, b := range bodies {
		if want := fmt.Sprint("hello ", 39-i); b != want {
			t.Fatalf("message %d is %q, want %q", i, b, want)
		}
	}
}

// createRoom's invite list reaches users of other servers through the
// invite handshake.
func TestCreateRoomInvitesRemoteUser(t *testing.T) {
	servers := servertest.Start(t, 2)
	a, b := servers[0], servers[1]
	_, aliceToken := a.RegisterUser(t, "alice")
	bobID, bobToken := b.RegisterUser(t, "bob")
	var created struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken,
		map[string]any{"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bobID}}, &created)
	if m := membershipOn(t, a, created.RoomID, bobID); m != "invite" {
		t.Fatalf("bob's membership on A is %q", m)
	}
	if _, ok := doSync(t, b, bobToken).Rooms.Invite[created.RoomID]; !ok {
		t.Fatalf("bob's sync on B lacks the invite")
	}
	b.DoJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(created.RoomID), bobToken, map[string]any{}, nil)
	if m := membershipOn(t, a, created.RoomID, bobID); m != "join" {
		t.Fatalf("bob's membership on A after joining is %q", m)
	}
}
