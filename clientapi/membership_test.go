package clientapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/internal/servertest"
)

func TestJoinInviteLeave(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	bob.ok(t, "PUT", v3+"/profile/"+bob.id+"/displayname", map[string]string{"displayname": "Bobby"})

	public := alice.createRoom(t, map[string]any{"preset": "public_chat", "room_alias_name": "town"})
	private := alice.createRoom(t, map[string]any{"preset": "private_chat"})

	// Join by alias and by ID; the response names the room.
	if got := bob.ok(t, "POST", v3+"/join/"+urlEscape("#town:"+s.Name), map[string]any{"reason": "hi"}).Get("room_id").Str; got != public {
		t.Fatalf("join by alias: room %q, want %q", got, public)
	}
	m := bob.state(t, public, "m.room.member", bob.id)
	if m.Get("membership").Str != "join" || m.Get("displayname").Str != "Bobby" || m.Get("reason").Str != "hi" {
		t.Errorf("bob's join: %s", m.Raw)
	}
	// Joining again changes nothing: same event.
	first := bob.ok(t, "GET", room(public)+"/state/m.room.member/"+bob.id+"?format=event", nil).Get("event_id").Str
	bob.ok(t, "POST", room(public)+"/join", map[string]any{"reason": "hi"})
	if again := bob.ok(t, "GET", room(public)+"/state/m.room.member/"+bob.id+"?format=event", nil).Get("event_id").Str; again != first {
		t.Errorf("a repeated join sent a new event %s (was %s)", again, first)
	}
	// An empty body is accepted, as clients send.
	carol.ok(t, "POST", room(public)+"/join", "")

	// The private room needs an invite.
	before := streamPos(t, s)
	res := bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(private)+"/join", map[string]any{})
	t.Logf("uninvited join refused: %s", res.Get("error").Str)
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(private)+"/invite", map[string]any{"user_id": bob.id})
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
	alice.ok(t, "POST", room(private)+"/invite", map[string]any{"user_id": bob.id, "reason": "welcome"})
	if inv := alice.state(t, private, "m.room.member", bob.id); inv.Get("membership").Str != "invite" || inv.Get("reason").Str != "welcome" || inv.Get("displayname").Str != "Bobby" {
		t.Errorf("invite: %s", inv.Raw)
	}
	// Inviting again is fine (invite.yaml: "or was already invited").
	alice.ok(t, "POST", room(private)+"/invite", map[string]any{"user_id": bob.id, "reason": "welcome"})
	bob.ok(t, "POST", room(private)+"/join", nil)
	if got := bob.ok(t, "GET", v3+"/joined_rooms", nil).Get("joined_rooms").Array(); len(got) != 2 {
		t.Errorf("bob's joined_rooms %v", got)
	}

	// Leave, then forget.
	bob.fails(t, http.StatusBadRequest, "M_UNKNOWN", "POST", room(private)+"/forget", nil)
	bob.ok(t, "POST", room(private)+"/leave", map[string]any{"reason": "bye"})
	if l := alice.state(t, private, "m.room.member", bob.id); l.Get("membership").Str != "leave" || l.Get("reason").Str != "bye" {
		t.Errorf("leave: %s", l.Raw)
	}
	// A user who left still reads the room as it was when they left.
	alice.ok(t, "PUT", room(private)+"/state/m.room.name/", map[string]any{"name": "after bob left"})
	bob.fails(t, http.StatusNotFound, "M_NOT_FOUND", "GET", room(private)+"/state/m.room.name/", nil)
	if n := len(bob.ok(t, "GET", room(private)+"/state", nil).Array()); n == 0 {
		t.Error("bob, who left, sees no state")
	}
	bob.ok(t, "POST", room(private)+"/forget", nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(private)+"/state", nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(private)+"/members", nil)
	if got, _ := s.DB().ForgottenRooms(t.Context(), bob.id); !slices.Equal(got, []string{private}) {
		t.Errorf("forgotten rooms %v", got)
	}
	// A new invite ends the forgetting.
	alice.ok(t, "POST", room(private)+"/invite", map[string]any{"user_id": bob.id})
	if got, _ := s.DB().ForgottenRooms(t.Context(), bob.id); len(got) != 0 {
		t.Errorf("forgotten rooms after a new invite %v", got)
	}
	// Rejecting the invite is a leave.
	bob.ok(t, "POST", room(private)+"/leave", nil)
	if l := alice.state(t, private, "m.room.member", bob.id); l.Get("membership").Str != "leave" {
		t.Errorf("rejected invite: %s", l.Raw)
	}
	// Forgetting a room one was never in does nothing; an unknown room is 404.
	newUser(t, s, "dave").ok(t, "POST", room(private)+"/forget", nil)
	bob.fails(t, http.StatusNotFound, "M_NOT_FOUND", "POST", room("!nowhere:"+s.Name)+"/forget", nil)
}

func TestKickBanUnban(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	carol.ok(t, "POST", room(roomID)+"/join", nil)

	// Bob (level 0) may not kick or ban.
	before := streamPos(t, s)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/kick", map[string]any{"user_id": carol.id})
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/ban", map[string]any{"user_id": carol.id})
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}

	alice.ok(t, "POST", room(roomID)+"/kick", map[string]any{"user_id": carol.id, "reason": "spam"})
	if k := alice.state(t, roomID, "m.room.member", carol.id); k.Get("membership").Str != "leave" || k.Get("reason").Str != "spam" {
		t.Errorf("kick: %s", k.Raw)
	}
	alice.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/kick", map[string]any{"user_id": carol.id})
	// A kicked user may come back to a public room.
	carol.ok(t, "POST", room(roomID)+"/join", nil)

	alice.ok(t, "POST", room(roomID)+"/ban", map[string]any{"user_id": carol.id, "reason": "again"})
	if b := alice.state(t, roomID, "m.room.member", carol.id); b.Get("membership").Str != "ban" || b.Get("reason").Str != "again" {
		t.Errorf("ban: %s", b.Raw)
	}
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/join", nil)
	alice.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/invite", map[string]any{"user_id": carol.id})
	// Banning someone who never joined works too.
	dave := newUser(t, s, "dave")
	alice.ok(t, "POST", room(roomID)+"/ban", map[string]any{"user_id": dave.id})

	alice.fails(t, http.StatusForbidden, "M_BAD_STATE", "POST", room(roomID)+"/unban", map[string]any{"user_id": bob.id})
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(roomID)+"/unban", map[string]any{"user_id": carol.id})
	alice.ok(t, "POST", room(roomID)+"/unban", map[string]any{"user_id": carol.id})
	if u := alice.state(t, roomID, "m.room.member", carol.id); u.Get("membership").Str != "leave" {
		t.Errorf("unban: %s", u.Raw)
	}
	carol.ok(t, "POST", room(roomID)+"/join", nil)
}

func TestKnock(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"room_alias_name": "door", "initial_state": []any{
		map[string]any{"type": "m.room.join_rules", "content": map[string]string{"join_rule": "knock"}},
	}})
	if got := bob.ok(t, "POST", v3+"/knock/"+urlEscape("#door:"+s.Name), map[string]any{"reason": "let me in"}).Get("room_id").Str; got != roomID {
		t.Fatalf("knock: room %q", got)
	}
	if k := alice.state(t, roomID, "m.room.member", bob.id); k.Get("membership").Str != "knock" || k.Get("reason").Str != "let me in" {
		t.Errorf("knock: %s", k.Raw)
	}
	if got := bob.roomsWith(t, "knock"); !slices.Equal(got, []string{roomID}) {
		t.Errorf("bob knocks on %v", got)
	}
	// Accepting is inviting.
	alice.ok(t, "POST", room(roomID)+"/invite", map[string]any{"user_id": bob.id})
	bob.ok(t, "POST", v3+"/join/"+urlEscape(roomID), nil)

	// A room that does not allow knocking, and a room version without it.
	closed := alice.createRoom(t, nil)
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", v3+"/knock/"+urlEscape(closed), nil)
	v6 := alice.createRoom(t, map[string]any{"room_version": "6"})
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", v3+"/knock/"+urlEscape(v6), nil)
}

func TestRestrictedJoin(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	space := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(space)+"/join", nil)
	restricted := alice.createRoom(t, map[string]any{"room_version": "10", "initial_state": []any{
		map[string]any{"type": "m.room.join_rules", "content": map[string]any{
			"join_rule": "restricted",
			"allow":     []any{map[string]string{"type": "m.room_membership", "room_id": space}},
		}},
	}})
	bob.ok(t, "POST", room(restricted)+"/join", nil)
	if m := alice.state(t, restricted, "m.room.member", bob.id); m.Get("join_authorised_via_users_server").Str != alice.id {
		t.Errorf("restricted join: %s", m.Raw)
	}
	// Carol is not in the space.
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "POST", room(restricted)+"/join", nil)
}

func TestMembershipErrors(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newUser(t, s, "alice")
	roomID := alice.createRoom(t, nil)
	unknown := "!unknown:" + s.Name
	before := streamPos(t, s)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", room(unknown) + "/join", nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/join/" + urlEscape(unknown), nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/join/" + urlEscape("!room:elsewhere.example"), nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/join/" + urlEscape("#nope:"+s.Name), nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/join/" + urlEscape("#remote:elsewhere.example"), nil, 404, "M_NOT_FOUND"},
		{"POST", v3 + "/join/" + urlEscape("#bad alias"), nil, 400, "M_INVALID_PARAM"},
		{"POST", v3 + "/join/nothing", nil, 400, "M_INVALID_PARAM"},
		{"POST", v3 + "/join/" + urlEscape(roomID) + "?via=bad%20server", nil, 400, "M_INVALID_PARAM"},
		{"POST", room(roomID) + "/join", `[1]`, 400, "M_BAD_JSON"},
		{"POST", room(roomID) + "/join", `{"reason": 1}`, 400, "M_BAD_JSON"},
		{"POST", room(roomID) + "/join", `{bad`, 400, "M_NOT_JSON"},
		{"POST", v3 + "/knock/" + urlEscape(unknown), nil, 404, "M_NOT_FOUND"},
		{"POST", room(roomID) + "/invite", map[string]any{}, 400, "M_MISSING_PARAM"},
		{"POST", room(roomID) + "/invite", map[string]any{"user_id": "bob"}, 400, "M_INVALID_PARAM"},
		{"POST", room(roomID) + "/invite", map[string]any{"user_id": 5}, 400, "M_BAD_JSON"},
		{"POST", room(roomID) + "/invite", map[string]any{"user_id": "@nobody:" + s.Name}, 404, "M_NOT_FOUND"},
		{"POST", room(roomID) + "/invite", ``, 400, "M_NOT_JSON"},
		{"POST", room(unknown) + "/invite", map[string]any{"user_id": alice.id}, 404, "M_NOT_FOUND"},
		{"POST", room(unknown) + "/kick", map[string]any{"user_id": alice.id}, 404, "M_NOT_FOUND"},
		{"POST", room(unknown) + "/ban", map[string]any{"user_id": alice.id}, 404, "M_NOT_FOUND"},
		{"POST", room(unknown) + "/unban", map[string]any{"user_id": alice.id}, 404, "M_NOT_FOUND"},
		{"POST", room(roomID) + "/kick", map[string]any{"user_id": "@x:" + s.Name}, 403, "M_FORBIDDEN"},
		{"POST", room(roomID) + "/ban", map[string]any{"user_id": "@x"}, 400, "M_INVALID_PARAM"},
		{"POST", room(unknown) + "/leave", nil, 404, "M_NOT_FOUND"},
		{"POST", room("notaroom") + "/leave", nil, 400, "M_INVALID_PARAM"},
		// Inviting oneself: already joined.
		{"POST", room(roomID) + "/invite", map[string]any{"user_id": alice.id}, 403, "M_FORBIDDEN"},
	} {
		alice.fails(t, c.status, c.code, c.method, c.path, c.body)
	}
	// Leaving a room one is not in.
	newUser(t, s, "bob").fails(t, 403, "M_FORBIDDEN", "POST", room(roomID)+"/leave", nil)
	if after := streamPos(t, s); after != before {
		t.Errorf("refused requests moved the stream from %d to %d", before, after)
	}
	if got := alice.ok(t, "GET", v3+"/joined_rooms", nil).Get("joined_rooms"); len(got.Array()) != 1 || got.Array()[0].Str != roomID {
		t.Errorf("joined_rooms %s", got.Raw)
	}
}
