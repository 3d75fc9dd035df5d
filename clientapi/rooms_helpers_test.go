package clientapi_test

// Helpers for the room endpoint tests: a user on a test server who makes
// requests and checks their answers.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

const v3 = "/_matrix/client/v3"

// user is a registered account on a test server.
type user struct {
	s     *servertest.Server
	id    string
	token string
}

func newUser(t *testing.T, s *servertest.Server, localpart string) *user {
	t.Helper()
	id, token := s.RegisterUser(t, localpart)
	return &user{s: s, id: id, token: token}
}

// do sends a request and returns the status and the parsed response body.
func (u *user) do(t *testing.T, method, path string, body any) (int, gjson.Result) {
	t.Helper()
	status, raw := u.s.Do(t, method, path, u.token, body)
	if !gjson.ValidBytes(raw) {
		t.Fatalf("%s %s: the response is not JSON: %q", method, path, raw)
	}
	return status, gjson.ParseBytes(raw)
}

// ok sends a request that must succeed (200) and returns the body.
func (u *user) ok(t *testing.T, method, path string, body any) gjson.Result {
	t.Helper()
	status, res := u.do(t, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s as %s: status %d: %s", method, path, u.id, status, res.Raw)
	}
	return res
}

// fails sends a request that must fail with status and errcode.
func (u *user) fails(t *testing.T, status int, code, method, path string, body any) gjson.Result {
	t.Helper()
	got, res := u.do(t, method, path, body)
	if got != status || res.Get("errcode").Str != code || res.Get("error").Str == "" {
		t.Fatalf("%s %s as %s: got %d %s, want %d %s", method, path, u.id, got, res.Raw, status, code)
	}
	return res
}

// createRoom creates a room with body and returns its ID.
func (u *user) createRoom(t *testing.T, body any) string {
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

// room returns the path prefix of a room's endpoints.
func room(roomID string) string { return v3 + "/rooms/" + url.PathEscape(roomID) }

// state returns the content of a state event of the room, or fails.
func (u *user) state(t *testing.T, roomID, evType, stateKey string) gjson.Result {
	t.Helper()
	return u.ok(t, "GET", room(roomID)+"/state/"+url.PathEscape(evType)+"/"+url.PathEscape(stateKey), nil)
}

// send sends a message event and returns its ID.
func (u *user) send(t *testing.T, roomID, txnID string, content any) string {
	t.Helper()
	return u.ok(t, "PUT", room(roomID)+"/send/m.room.message/"+url.PathEscape(txnID), content).Get("event_id").Str
}

// joinedRooms is the user's rooms with membership join, read from storage
// (so that tests can check what a refused request left behind).
func (u *user) roomsWith(t *testing.T, memberships ...string) []string {
	t.Helper()
	ids, err := u.s.DB().RoomsForUser(context.Background(), u.id, memberships...)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// streamPos is the server's current stream position: it must not move
// when a request is refused.
func streamPos(t *testing.T, s *servertest.Server) int64 {
	t.Helper()
	p, err := s.DB().StreamPos(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// jsonOf re-encodes a gjson value as Go data for comparisons.
func jsonOf(t *testing.T, r gjson.Result) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
