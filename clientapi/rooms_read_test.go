package clientapi_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/servertest"
)

// memberIDs lists the state keys of a /members chunk, sorted.
func memberIDs(res gjson.Result) []string {
	var ids []string
	for _, ev := range res.Get("chunk").Array() {
		ids = append(ids, ev.Get("state_key").Str+"="+ev.Get("content.membership").Str)
	}
	slices.Sort(ids)
	return ids
}

func TestMembers(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice, bob, carol, dave := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol"), newUser(t, s, "dave")
	alice.ok(t, "PUT", v3+"/profile/"+alice.id+"/displayname", map[string]string{"displayname": "Alice"})
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	alice.ok(t, "POST", room(roomID)+"/invite", map[string]any{"user_id": carol.id})
	alice.ok(t, "POST", room(roomID)+"/ban", map[string]any{"user_id": dave.id})
	// A sync token position before bob leaves (the server's stream
	// position, in the sync tokens' "s<pos>" form).
	atBobJoined := streamPos(t, s)
	bob.ok(t, "POST", room(roomID)+"/leave", nil)
	alice.send(t, roomID, "after", map[string]any{"body": "after bob left"})
	eve := newUser(t, s, "eve")
	eve.ok(t, "POST", room(roomID)+"/join", nil)

	mem := func(query string) []string { return memberIDs(alice.ok(t, "GET", room(roomID)+"/members"+query, nil)) }
	all := []string{alice.id + "=join", bob.id + "=leave", carol.id + "=invite", dave.id + "=ban", eve.id + "=join"}
	slices.Sort(all)
	if got := mem(""); !slices.Equal(got, all) {
		t.Errorf("members %v, want %v", got, all)
	}
	if got := mem("?membership=join"); !slices.Equal(got, []string{alice.id + "=join", eve.id + "=join"}) {
		t.Errorf("membership=join %v", got)
	}
	if got := mem("?not_membership=leave"); len(got) != 4 || slices.Contains(got, bob.id+"=leave") {
		t.Errorf("not_membership=leave %v", got)
	}
	// Both: is invite and is not leave (Synapse's reading).
	if got := mem("?membership=invite&not_membership=leave"); !slices.Equal(got, []string{carol.id + "=invite"}) {
		t.Errorf("membership=invite&not_membership=leave %v", got)
	}
	// At a token: as it was before bob left and eve came.
	at := mem("?at=s" + strconv.FormatInt(atBobJoined, 10))
	if !slices.Contains(at, bob.id+"=join") || slices.Contains(at, eve.id+"=join") {
		t.Errorf("members at s%d: %v", atBobJoined, at)
	}
	if got := mem("?at=s" + strconv.FormatInt(atBobJoined, 10) + "_0_abcd1234"); !slices.Equal(got, at) {
		t.Errorf("a sync token gives %v, the pagination token %v", got, at)
	}
	// Bob, who left, sees the members as they were when he left.
	if got := memberIDs(bob.ok(t, "GET", room(roomID)+"/members", nil)); slices.Contains(got, eve.id+"=join") || !slices.Contains(got, bob.id+"=leave") {
		t.Errorf("bob's view after leaving %v", got)
	}
	ev := alice.ok(t, "GET", room(roomID)+"/members?membership=join", nil).Get("chunk.0")
	if ev.Get("type").Str != "m.room.member" || ev.Get("room_id").Str != roomID || !ev.Get("event_id").Exists() {
		t.Errorf("member event %s", ev.Raw)
	}

	joined := alice.ok(t, "GET", room(roomID)+"/joined_members", nil).Get("joined")
	if len(joined.Map()) != 2 || joined.Get(gjsonKey(alice.id)+".display_name").Str != "Alice" || !joined.Get(gjsonKey(eve.id)).Exists() {
		t.Errorf("joined_members %s", joined.Raw)
	}
	// joined_members is for current members only.
	bob.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/joined_members", nil)
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/joined_members", nil)
	carol.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/members", nil)
	dave.fails(t, http.StatusForbidden, "M_FORBIDDEN", "GET", room(roomID)+"/members", nil)

	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{room(roomID) + "/members?membership=joined", 400, "M_INVALID_PARAM"},
		{room(roomID) + "/members?not_membership=x", 400, "M_INVALID_PARAM"},
		{room(roomID) + "/members?at=garbage", 400, "M_INVALID_PARAM"},
		{room(roomID) + "/members?at=s-01", 400, "M_INVALID_PARAM"},
		{room(roomID) + "/members?at=s1_0_abc", 400, "M_INVALID_PARAM"}, // not an instance ID
		{room("!nope:"+s.Name) + "/members", 404, "M_NOT_FOUND"},
		{room("!nope:"+s.Name) + "/joined_members", 404, "M_NOT_FOUND"},
		{room("nope") + "/members", 400, "M_INVALID_PARAM"},
	} {
		alice.fails(t, c.status, c.code, "GET", c.path, nil)
	}
}

func TestRateLimits(t *testing.T) {
	s := servertest.Start(t, 1, servertest.WithConfig(func(_ int, cfg *config.Config) {
		cfg.NoRateLimit = false
		cfg.RateLimit.MessagePerMinute, cfg.RateLimit.MessageBurst = 1, 3
		cfg.RateLimit.JoinPerMinute, cfg.RateLimit.JoinBurst = 1, 2
		// Registration is limited too; leave room for the test's accounts.
		cfg.RateLimit.RegistrationPerMinute, cfg.RateLimit.RegistrationBurst = 60, 20
		cfg.RateLimit.LoginPerMinute, cfg.RateLimit.LoginBurst = 60, 20
	}))[0]
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	for i := range 3 {
		alice.send(t, roomID, "ok"+strconv.Itoa(i), map[string]any{"body": "x"})
	}
	before := streamPos(t, s)
	res := alice.fails(t, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "PUT", room(roomID)+"/send/m.room.message/over", map[string]any{"body": "x"})
	if res.Get("retry_after_ms").Int() <= 0 {
		t.Errorf("429 without retry_after_ms: %s", res.Raw)
	}
	if after := streamPos(t, s); after != before {
		t.Error("a rate-limited send wrote something")
	}
	// Per user: bob is not limited by alice's sends.
	bob.ok(t, "POST", room(roomID)+"/join", nil)
	others := []string{alice.createRoom(t, map[string]any{"preset": "public_chat"}), alice.createRoom(t, map[string]any{"preset": "public_chat"})}
	bob.ok(t, "POST", room(others[0])+"/join", nil)
	bob.fails(t, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "POST", room(others[1])+"/join", nil)
}
