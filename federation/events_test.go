package federation_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// roomOnA is a room of server A's user, with a few messages, that B asks
// about.
type roomOnA struct {
	a, b          *servertest.Server
	roomID, alias string
	token         string
	// messages: the events alice sent, in order; last: the latest event.
	messages []string
	last     string
}

func newRoomOnA(t *testing.T) *roomOnA {
	servers := servertest.Start(t, 2)
	ro := &roomOnA{a: servers[0], b: servers[1]}
	_, ro.token = ro.a.RegisterUser(t, "alice")
	var created struct {
		RoomID string `json:"room_id"`
	}
	ro.a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", ro.token,
		map[string]any{"preset": "public_chat", "room_alias_name": "chat"}, &created)
	ro.roomID, ro.alias = created.RoomID, "#chat:"+ro.a.Name
	for i := range 3 {
		ro.messages = append(ro.messages, ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": fmt.Sprint("hello ", i)}))
	}
	return ro
}

// send sends an event as alice (a state event when stateKey is not nil).
func (ro *roomOnA) send(t *testing.T, evType string, stateKey *string, content any) string {
	t.Helper()
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(ro.roomID)
	if stateKey != nil {
		path += "/state/" + evType + "/" + url.PathEscape(*stateKey)
	} else {
		path += fmt.Sprintf("/send/%s/txn%d", evType, time.Now().UnixNano())
	}
	var resp struct {
		EventID string `json:"event_id"`
	}
	ro.a.DoJSON(t, http.MethodPut, path, ro.token, content, &resp)
	ro.last = resp.EventID
	return resp.EventID
}

// joinB makes a user of B join the room on A, as B would after a
// make_join/send_join: a join event signed by B's key, received by A's
// roomserver.
func (ro *roomOnA) joinB(t *testing.T) {
	t.Helper()
	rs := ro.a.Roomserver()
	ctx := ctxT(t)
	ver, err := rs.RoomVersion(ctx, ro.roomID)
	if err != nil {
		t.Fatal(err)
	}
	bob := "@bob:" + ro.b.Name
	content := []byte(`{"membership":"join"}`)
	var authIDs []string
	for _, k := range auth.SelectAuthEvents(ver, "m.room.member", &bob, bob, content) {
		ev, err := rs.CurrentStateEvent(ctx, ro.roomID, k)
		if err != nil {
			t.Fatal(err)
		}
		if ev != nil {
			authIDs = append(authIDs, ev.EventID())
		}
	}
	last, err := rs.Event(ctx, ro.last)
	if err != nil {
		t.Fatal(err)
	}
	keyID, key := ro.b.Keys().Current()
	ev, err := pdu.ProtoEvent{
		Type: "m.room.member", StateKey: &bob, Sender: bob, RoomID: ro.roomID, Content: content,
		PrevEvents: []string{ro.last}, AuthEvents: authIDs, Depth: last.Event.Depth() + 1,
		OriginServerTS: time.Now().UnixMilli(),
	}.Build(ver, ro.b.Name, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rs.InputReceived(ctx, ro.roomID, []*pdu.Event{ev})
	if err != nil || len(res) != 1 || res[0].Output == nil {
		t.Fatalf("B's join: %+v, %v", res, err)
	}
	ro.last = ev.EventID()
}

// bGet makes a signed GET from B to A and decodes the answer into out.
func (ro *roomOnA) bGet(t *testing.T, path string, out any) error {
	t.Helper()
	return ro.b.SignedFederationClient().DoJSON(ctxT(t), http.MethodGet, ro.a.Name, path, nil, out)
}

func wantFedErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var fe *fedclient.Error
	if !errors.As(err, &fe) || fe.Status != status || fe.Code != code {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
}

type txnResp struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
}

func eventIDOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	ver, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := pdu.ParseEvent(raw, ver)
	if err != nil {
		t.Fatal(err)
	}
	return ev.EventID()
}

func TestGetEvent(t *testing.T) {
	ro := newRoomOnA(t)
	path := func(id string) string { return "/_matrix/federation/v1/event/" + url.PathEscape(id) }

	status, body := rawFed(t, ro.a, path(ro.messages[0]))
	wantErr(t, "unsigned", status, body, 401, "M_UNAUTHORIZED")
	wantFedErr(t, "shared history, B not in the room", ro.bGet(t, path(ro.messages[0]), nil), 403, "M_FORBIDDEN")
	wantFedErr(t, "unknown event", ro.bGet(t, path("$nope"), nil), 404, "M_NOT_FOUND")

	// World-readable history: any server may read it, from the events after
	// the change (and the change itself) on.
	empty := ""
	hv := ro.send(t, "m.room.history_visibility", &empty, map[string]string{"history_visibility": "world_readable"})
	after := ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "public now"})
	for _, id := range []string{hv, after} {
		var txn txnResp
		if err := ro.bGet(t, path(id), &txn); err != nil {
			t.Fatal(err)
		}
		if txn.Origin != ro.a.Name || txn.OriginServerTS == 0 || len(txn.PDUs) != 1 || eventIDOf(t, txn.PDUs[0]) != id {
			t.Fatalf("event %s: %+v", id, txn)
		}
	}
	wantFedErr(t, "shared history before world_readable", ro.bGet(t, path(ro.messages[0]), nil), 403, "M_FORBIDDEN")

	// Once B has a user joined, the shared history is B's too.
	ro.joinB(t)
	var txn txnResp
	if err := ro.bGet(t, path(ro.messages[0]), &txn); err != nil || len(txn.PDUs) != 1 || eventIDOf(t, txn.PDUs[0]) != ro.messages[0] {
		t.Fatalf("after B joined: %+v, %v", txn, err)
	}

	// A redacted event is served in its redacted form.
	redactPath := fmt.Sprintf("/_matrix/client/v3/rooms/%s/redact/%s/r%d", url.PathEscape(ro.roomID), url.PathEscape(ro.messages[1]), time.Now().UnixNano())
	ro.a.DoJSON(t, http.MethodPut, redactPath, ro.token, map[string]string{"reason": "oops"}, nil)
	txn = txnResp{}
	if err := ro.bGet(t, path(ro.messages[1]), &txn); err != nil || len(txn.PDUs) != 1 {
		t.Fatalf("redacted event: %+v, %v", txn, err)
	}
	var redacted struct {
		Content map[string]any `json:"content"`
	}
	if err := json.Unmarshal(txn.PDUs[0], &redacted); err != nil || len(redacted.Content) != 0 || eventIDOf(t, txn.PDUs[0]) != ro.messages[1] {
		t.Fatalf("redacted event served as %s (%v)", txn.PDUs[0], err)
	}
}

func TestGetStateAndAuthChain(t *testing.T) {
	ro := newRoomOnA(t)
	ev := ro.messages[2]
	stateIDs := "/_matrix/federation/v1/state_ids/" + url.PathEscape(ro.roomID) + "?event_id=" + url.QueryEscape(ev)
	state := "/_matrix/federation/v1/state/" + url.PathEscape(ro.roomID) + "?event_id=" + url.QueryEscape(ev)
	eventAuth := "/_matrix/federation/v1/event_auth/" + url.PathEscape(ro.roomID) + "/" + url.PathEscape(ev)

	for _, p := range []string{stateIDs, state, eventAuth} {
		status, body := rawFed(t, ro.a, p)
		wantErr(t, "unsigned "+p, status, body, 401, "M_UNAUTHORIZED")
		wantFedErr(t, "B not in the room: "+p, ro.bGet(t, p, nil), 403, "M_FORBIDDEN")
	}
	wantFedErr(t, "missing event_id", ro.bGet(t, "/_matrix/federation/v1/state_ids/"+url.PathEscape(ro.roomID), nil), 400, "M_MISSING_PARAM")
	wantFedErr(t, "unknown room", ro.bGet(t, "/_matrix/federation/v1/state_ids/"+url.PathEscape("!nope:"+ro.a.Name)+"?event_id=x", nil), 404, "M_NOT_FOUND")

	ro.joinB(t)
	wantFedErr(t, "unknown event", ro.bGet(t, "/_matrix/federation/v1/state_ids/"+url.PathEscape(ro.roomID)+"?event_id=%24nope", nil), 404, "M_NOT_FOUND")
	wantFedErr(t, "unknown event", ro.bGet(t, "/_matrix/federation/v1/event_auth/"+url.PathEscape(ro.roomID)+"/%24nope", nil), 404, "M_NOT_FOUND")

	// The state before the last message is the room's state as created
	// (public_chat: create, alice's join, power levels, join rules,
	// history visibility, guest access, the alias).
	want, err := ro.a.Roomserver().StateBefore(ctxT(t), ev)
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for _, e := range want {
		wantIDs = append(wantIDs, e.EventID())
	}
	slices.Sort(wantIDs)
	var ids struct {
		PDUIDs       []string `json:"pdu_ids"`
		AuthChainIDs []string `json:"auth_chain_ids"`
	}
	if err := ro.bGet(t, stateIDs, &ids); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids.PDUIDs)
	if !slices.Equal(ids.PDUIDs, wantIDs) || len(wantIDs) < 4 {
		t.Fatalf("state ids %v, want %v", ids.PDUIDs, wantIDs)
	}
	// Every auth event of the state is in the auth chain, and the chain
	// holds nothing but state of the room (no messages).
	chain := map[string]bool{}
	for _, id := range ids.AuthChainIDs {
		chain[id] = true
	}
	for _, e := range want {
		for _, a := range e.AuthEventIDs() {
			if !chain[a] {
				t.Fatalf("auth event %s of %s missing from the chain %v", a, e.EventID(), ids.AuthChainIDs)
			}
		}
	}
	for _, m := range ro.messages {
		if chain[m] {
			t.Fatalf("message %s in the auth chain", m)
		}
	}

	var full struct {
		PDUs      []json.RawMessage `json:"pdus"`
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	if err := ro.bGet(t, state, &full); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, raw := range full.PDUs {
		got = append(got, eventIDOf(t, raw))
	}
	slices.Sort(got)
	if !slices.Equal(got, wantIDs) || len(full.AuthChain) != len(ids.AuthChainIDs) {
		t.Fatalf("state %v (chain %d), want %v (chain %d)", got, len(full.AuthChain), wantIDs, len(ids.AuthChainIDs))
	}

	// The message's auth chain: its auth events and theirs.
	var ea struct {
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	if err := ro.bGet(t, eventAuth, &ea); err != nil {
		t.Fatal(err)
	}
	msg, err := ro.a.Roomserver().Event(ctxT(t), ev)
	if err != nil {
		t.Fatal(err)
	}
	gotChain := map[string]bool{}
	for _, raw := range ea.AuthChain {
		gotChain[eventIDOf(t, raw)] = true
	}
	for _, a := range msg.Event.AuthEventIDs() {
		if !gotChain[a] {
			t.Fatalf("auth event %s missing from event_auth %v", a, gotChain)
		}
	}
	if gotChain[ev] {
		t.Fatal("event_auth holds the event itself")
	}

	// A server ACL denying IP literals shuts B (127.0.0.1:port) out.
	empty := ""
	ro.send(t, "m.room.server_acl", &empty, map[string]any{"allow": []string{"*"}, "allow_ip_literals": false})
	for _, p := range []string{stateIDs, state, eventAuth} {
		wantFedErr(t, "denied by the ACL: "+p, ro.bGet(t, p, nil), 403, "M_FORBIDDEN")
	}
}

func TestQueryDirectory(t *testing.T) {
	ro := newRoomOnA(t)
	q := func(alias string) string {
		return "/_matrix/federation/v1/query/directory?room_alias=" + url.QueryEscape(alias)
	}
	var resp struct {
		RoomID  string   `json:"room_id"`
		Servers []string `json:"servers"`
	}
	if err := ro.bGet(t, q(ro.alias), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.RoomID != ro.roomID || !slices.Equal(resp.Servers, []string{ro.a.Name}) {
		t.Fatalf("directory: %+v", resp)
	}
	ro.joinB(t)
	if err := ro.bGet(t, q(ro.alias), &resp); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Servers, []string{ro.a.Name, ro.b.Name}) {
		t.Fatalf("servers after B joined: %v", resp.Servers)
	}
	status, body := rawFed(t, ro.a, q(ro.alias))
	wantErr(t, "unsigned", status, body, 401, "M_UNAUTHORIZED")
	wantFedErr(t, "unknown alias", ro.bGet(t, q("#nope:"+ro.a.Name), nil), 404, "M_NOT_FOUND")
	wantFedErr(t, "alias of another server", ro.bGet(t, q("#chat:"+ro.b.Name), nil), 404, "M_NOT_FOUND")
	wantFedErr(t, "not an alias", ro.bGet(t, q("chat"), nil), 400, "M_INVALID_PARAM")
	wantFedErr(t, "no alias", ro.bGet(t, "/_matrix/federation/v1/query/directory", nil), 400, "M_MISSING_PARAM")
}
