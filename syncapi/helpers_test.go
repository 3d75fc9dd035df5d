package syncapi_test

// Helpers for the sync API's integration tests: a user on a real test
// server who makes requests and checks their answers.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver"
)

const v3 = "/_matrix/client/v3"

type user struct {
	s     *servertest.Server
	id    string
	token string
}

func newUser(t testing.TB, s *servertest.Server, localpart string) *user {
	t.Helper()
	id, token := s.RegisterUser(t, localpart)
	return &user{s: s, id: id, token: token}
}

func (u *user) do(t testing.TB, method, path string, body any) (int, gjson.Result) {
	t.Helper()
	status, raw := u.s.Do(t, method, path, u.token, body)
	if !gjson.ValidBytes(raw) {
		t.Fatalf("%s %s: the response is not JSON: %q", method, path, raw)
	}
	return status, gjson.ParseBytes(raw)
}

func (u *user) ok(t testing.TB, method, path string, body any) gjson.Result {
	t.Helper()
	status, res := u.do(t, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s as %s: status %d: %s", method, path, u.id, status, res.Raw)
	}
	return res
}

func (u *user) fails(t testing.TB, status int, code, method, path string, body any) gjson.Result {
	t.Helper()
	got, res := u.do(t, method, path, body)
	if got != status || res.Get("errcode").Str != code || res.Get("error").Str == "" {
		t.Fatalf("%s %s as %s: got %d %s, want %d %s", method, path, u.id, got, res.Raw, status, code)
	}
	return res
}

func (u *user) createRoom(t testing.TB, body any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	id := u.ok(t, "POST", v3+"/createRoom", body).Get("room_id").Str
	if id == "" {
		t.Fatal("createRoom: no room_id")
	}
	return id
}

func room(roomID string) string { return v3 + "/rooms/" + url.PathEscape(roomID) }

var txnCounter atomic.Int64

// send sends an m.room.message with body text and returns its event ID.
func (u *user) send(t testing.TB, roomID, text string) string {
	t.Helper()
	return u.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": text})
}

// sendEvent sends a message event through PUT /send (or, while that
// endpoint is not served, through the roomserver, the same path it takes).
func (u *user) sendEvent(t testing.TB, roomID, evType string, content any) string {
	t.Helper()
	txn := "t" + strconv.FormatInt(txnCounter.Add(1), 10)
	status, res := u.do(t, "PUT", room(roomID)+"/send/"+url.PathEscape(evType)+"/"+txn, content)
	if status == http.StatusOK {
		return res.Get("event_id").Str
	}
	if res.Get("errcode").Str != "M_UNRECOGNIZED" {
		t.Fatalf("send to %s: %d %s", roomID, status, res.Raw)
	}
	raw, _ := json.Marshal(content)
	outs, err := u.s.Roomserver().Send(context.Background(), roomID, roomserver.EventRequest{
		Type: evType, Sender: u.id, Content: raw,
	})
	if err != nil {
		t.Fatalf("send to %s: %v", roomID, err)
	}
	return outs[0].Event.EventID()
}

// setState sends a state event.
func (u *user) setState(t testing.TB, roomID, evType, stateKey string, content any) string {
	t.Helper()
	status, res := u.do(t, "PUT", room(roomID)+"/state/"+url.PathEscape(evType)+"/"+url.PathEscape(stateKey), content)
	if status == http.StatusOK {
		return res.Get("event_id").Str
	}
	if res.Get("errcode").Str != "M_UNRECOGNIZED" {
		t.Fatalf("set state in %s: %d %s", roomID, status, res.Raw)
	}
	raw, _ := json.Marshal(content)
	outs, err := u.s.Roomserver().Send(context.Background(), roomID, roomserver.EventRequest{
		Type: evType, StateKey: &stateKey, Sender: u.id, Content: raw,
	})
	if err != nil {
		t.Fatalf("set state in %s: %v", roomID, err)
	}
	return outs[0].Event.EventID()
}

func (u *user) join(t testing.TB, roomID string) {
	t.Helper()
	u.ok(t, "POST", room(roomID)+"/join", map[string]any{})
}

func (u *user) invite(t testing.TB, roomID, userID string) {
	t.Helper()
	u.ok(t, "POST", room(roomID)+"/invite", map[string]any{"user_id": userID})
}

func (u *user) leave(t testing.TB, roomID string) {
	t.Helper()
	u.ok(t, "POST", room(roomID)+"/leave", map[string]any{})
}

// sync calls /sync with the given query parameters.
func (u *user) sync(t testing.TB, params url.Values) gjson.Result {
	t.Helper()
	return u.ok(t, "GET", v3+"/sync?"+params.Encode(), nil)
}

// syncSince is an incremental sync with a timeout in milliseconds.
func (u *user) syncSince(t testing.TB, since string, timeoutMS int, filter string) gjson.Result {
	t.Helper()
	p := url.Values{"since": {since}, "timeout": {strconv.Itoa(timeoutMS)}}
	if filter != "" {
		p.Set("filter", filter)
	}
	return u.sync(t, p)
}

// initialSync is a sync without a token.
func (u *user) initialSync(t testing.TB, filter string) gjson.Result {
	t.Helper()
	p := url.Values{}
	if filter != "" {
		p.Set("filter", filter)
	}
	return u.sync(t, p)
}

// esc escapes a key for a gjson path (room and event IDs contain dots).
func esc(key string) string {
	out := make([]byte, 0, len(key)+4)
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%', ':':
			out = append(out, '\\')
		}
		out = append(out, key[i])
	}
	return string(out)
}

// timelineIDs returns the event IDs of a room's timeline in a sync
// response section ("join" or "leave").
func timelineIDs(res gjson.Result, section, roomID string) []string {
	var ids []string
	res.Get("rooms." + section + "." + esc(roomID) + ".timeline.events").ForEach(func(_, ev gjson.Result) bool {
		ids = append(ids, ev.Get("event_id").Str)
		return true
	})
	return ids
}

func joinedRoom(res gjson.Result, roomID string) gjson.Result {
	return res.Get("rooms.join." + esc(roomID))
}
