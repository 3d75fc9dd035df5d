package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/internal/servertest"
)

// sendToDevice sends one message per (user, device) of msgs.
func (d *cryptoDevice) sendToDevice(t *testing.T, evType, txnID string, msgs map[string]map[string]any) {
	t.Helper()
	d.ok(t, "PUT", v3+"/sendToDevice/"+evType+"/"+txnID, map[string]any{"messages": msgs})
}

// toDeviceBodies is the "n" field of each to-device event of a sync.
func toDeviceBodies(res gjson.Result) []string {
	var out []string
	for _, ev := range res.Get("to_device.events").Array() {
		out = append(out, ev.Get("content.n").String())
	}
	return out
}

// TestToDevice: messages reach the devices named (or every device of the
// user for "*") through /sync, in order, with sender and type; they come
// again until a sync with a later token acknowledges them, then never;
// a repeated transaction ID sends nothing.
func TestToDevice(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	bob2 := bob.newLogin(t)
	carol := newCryptoUser(t, s, "carol")

	t0 := bob.syncFrom(t, "").Get("next_batch").Str
	for i := range 3 {
		alice.sendToDevice(t, "m.test", fmt.Sprint("t", i), map[string]map[string]any{
			bob.id:   {bob.deviceID: map[string]any{"n": i}},
			carol.id: {"*": map[string]any{"n": i}},
		})
	}
	// The same transaction again: nothing more.
	alice.sendToDevice(t, "m.test", "t2", map[string]map[string]any{bob.id: {bob.deviceID: map[string]any{"n": 99}}})

	res := bob.syncFrom(t, t0)
	if got := toDeviceBodies(res); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("bob's to-device messages: %v (%s)", got, res.Get("to_device").Raw)
	}
	ev := res.Get("to_device.events.0")
	if ev.Get("sender").Str != alice.id || ev.Get("type").Str != "m.test" {
		t.Fatalf("event %s", ev.Raw)
	}
	// Not acknowledged yet: the same since gives them again.
	if got := toDeviceBodies(bob.syncFrom(t, t0)); len(got) != 3 {
		t.Fatalf("a repeated sync lost messages: %v", got)
	}
	t1 := res.Get("next_batch").Str
	if got := toDeviceBodies(bob.syncFrom(t, t1)); len(got) != 0 {
		t.Fatalf("acknowledged messages came again: %v", got)
	}
	// Deleted, so not even the old token brings them back.
	if got := toDeviceBodies(bob.syncFrom(t, t0)); len(got) != 0 {
		t.Fatalf("messages came again after they were acknowledged: %v", got)
	}
	// bob's other device got nothing; carol's only device got all three.
	if got := toDeviceBodies(bob2.syncFrom(t, "")); len(got) != 0 {
		t.Fatalf("bob's other device got %v", got)
	}
	if got := toDeviceBodies(carol.syncFrom(t, "")); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("carol ('*') got %v", got)
	}
	// "*" reaches every device, and a device named beside "*" gets its own
	// message only.
	alice.sendToDevice(t, "m.test", "all", map[string]map[string]any{bob.id: {
		"*": map[string]any{"n": "all"}, bob2.deviceID: map[string]any{"n": "own"},
	}})
	if got := toDeviceBodies(bob.syncFrom(t, t1)); !slices.Equal(got, []string{"all"}) {
		t.Fatalf("bob's first device: %v", got)
	}
	if got := toDeviceBodies(bob2.syncFrom(t, "")); !slices.Equal(got, []string{"own"}) {
		t.Fatalf("bob's second device: %v", got)
	}
	// A transaction ID is per device: alice's other device may reuse it.
	alice2 := alice.newLogin(t)
	alice2.sendToDevice(t, "m.test", "t0", map[string]map[string]any{carol.id: {carol.deviceID: map[string]any{"n": "again"}}})
	if got := toDeviceBodies(carol.syncFrom(t, "")); !slices.Equal(got, []string{"0", "1", "2", "again"}) {
		t.Fatalf("carol: %v", got)
	}
}

// TestToDeviceLimit: a long queue comes 100 messages a response, and the
// response that holds some back covers the stream only up to its last
// message, so a room event sent after them is neither lost nor early.
func TestToDeviceLimit(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.ok(t, "POST", v3+"/join/"+roomID, map[string]any{})
	since := bob.syncFrom(t, "").Get("next_batch").Str
	for i := range 130 {
		alice.sendToDevice(t, "m.test", fmt.Sprint("txn", i), map[string]map[string]any{bob.id: {bob.deviceID: map[string]any{"n": i}}})
	}
	alice.send(t, roomID, "after", map[string]any{"msgtype": "m.text", "body": "after the messages"})

	var got []string
	sawMessage := false
	for range 5 {
		res := bob.syncFrom(t, since)
		bodies := toDeviceBodies(res)
		if len(bodies) > 100 {
			t.Fatalf("%d to-device messages in one response", len(bodies))
		}
		for _, ev := range res.Get("rooms.join." + esc(roomID) + ".timeline.events").Array() {
			if ev.Get("content.body").Str == "after the messages" {
				if len(got)+len(bodies) < 130 {
					t.Fatalf("the room message came with only %d of the 130 earlier to-device messages", len(got)+len(bodies))
				}
				sawMessage = true
			}
		}
		got = append(got, bodies...)
		since = res.Get("next_batch").Str
	}
	want := make([]string, 130)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if !slices.Equal(got, want) || !sawMessage {
		t.Fatalf("got %d messages %v, room message seen %v", len(got), got, sawMessage)
	}
}

// TestToDeviceWakesSync: a waiting /sync returns as soon as a message for
// its device is sent.
func TestToDeviceWakesSync(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	since := bob.syncFrom(t, "").Get("next_batch").Str
	done := make(chan gjson.Result, 1)
	go func() {
		status, raw := s.Do(t, "GET", v3+"/sync?timeout=20000&set_presence=offline&since="+since, bob.token, nil)
		if status != http.StatusOK {
			t.Errorf("sync: %d %s", status, raw)
		}
		done <- gjson.ParseBytes(raw)
	}()
	time.Sleep(300 * time.Millisecond) // let the sync start waiting
	start := time.Now()
	alice.sendToDevice(t, "m.test", "wake", map[string]map[string]any{bob.id: {bob.deviceID: map[string]any{"n": "wake"}}})
	select {
	case res := <-done:
		if got := toDeviceBodies(res); !slices.Equal(got, []string{"wake"}) {
			t.Fatalf("woken sync: %s", res.Raw)
		}
		t.Logf("woken %v after the send", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting sync was not woken by the message")
	}
}

// TestToDeviceBadInput: the wrong shapes are refused, and nothing is sent.
func TestToDeviceBadInput(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	many := map[string]any{}
	for i := range 10001 {
		many[fmt.Sprint("D", i)] = map[string]any{}
	}
	for i, c := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{}, 400, "M_MISSING_PARAM"},
		{map[string]any{"messages": []string{}}, 400, "M_BAD_JSON"},
		{map[string]any{"messages": map[string]any{bob.id: "x"}}, 400, "M_BAD_JSON"},
		{map[string]any{"messages": map[string]any{bob.id: map[string]any{bob.deviceID: "not an object"}}}, 400, "M_BAD_JSON"},
		{map[string]any{"messages": map[string]any{"bob": map[string]any{bob.deviceID: map[string]any{}}}}, 400, "M_INVALID_PARAM"},
		{map[string]any{"messages": map[string]any{bob.id: many}}, 400, "M_INVALID_PARAM"},
	} {
		alice.fails(t, c.status, c.code, "PUT", v3+fmt.Sprintf("/sendToDevice/m.test/bad%d", i), c.body)
	}
	if got := toDeviceBodies(bob.syncFrom(t, "")); len(got) != 0 {
		t.Fatalf("refused requests delivered %v", got)
	}
}

// TestToDeviceRemoteAndDeletedDevices: messages for a remote user wait in
// the federation sender's queue for their server, one EDU per request; a deleted
// device's waiting messages go with it.
func TestToDeviceRemoteAndDeletedDevices(t *testing.T) {
	s := servertest.Start(t, 1)[0]
	alice := newCryptoUser(t, s, "alice")
	bob := newCryptoUser(t, s, "bob")
	bob2 := bob.newLogin(t)
	alice.sendToDevice(t, "m.test", "r", map[string]map[string]any{
		"@zed:remote.example": {"ZDEV": map[string]any{"n": 1}},
		bob.id:                {bob2.deviceID: map[string]any{"n": 2}},
	})
	edus, err := s.DB().QueuedEDUs(context.Background(), "remote.example", 10)
	if err != nil || len(edus) != 1 || edus[0].Type != "m.direct_to_device" {
		t.Fatalf("federation queue for remote.example: %v, %v", edus, err)
	}
	edu := gjson.ParseBytes(edus[0].Content)
	if edu.Get("sender").Str != alice.id || edu.Get("type").Str != "m.test" || edu.Get("message_id").Str == "" ||
		edu.Get("messages."+esc("@zed:remote.example")+".ZDEV.n").Int() != 1 {
		t.Fatalf("queued EDU %s", edu.Raw)
	}
	// bob deletes his second device (with UIA) before it syncs.
	st, res := bob.do(t, "DELETE", v3+"/devices/"+bob2.deviceID, map[string]any{})
	if st != http.StatusUnauthorized {
		t.Fatalf("delete without auth: %d %s", st, res.Raw)
	}
	bob.ok(t, "DELETE", v3+"/devices/"+bob2.deviceID, map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": res.Get("session").Str, "password": servertest.TestPassword,
		"identifier": map[string]any{"type": "m.id.user", "user": bob.id},
	}})
	msgs, err := s.DB().ToDeviceMessages(context.Background(), bob.id, bob2.deviceID, 0, 1<<62, 10)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("a deleted device's messages were kept: %v, %v", msgs, err)
	}
}
