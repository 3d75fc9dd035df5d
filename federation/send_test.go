package federation_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// shareWithB makes B hold ro's room as if joined: A's events replayed
// into B's roomserver, then B's user's join on both.
func (ro *roomOnA) shareWithB(t *testing.T) {
	t.Helper()
	ctx := ctxT(t)
	rsA, rsB := ro.a.Roomserver(), ro.b.Roomserver()
	var chain []*pdu.Event
	for id := ro.last; id != ""; {
		se, err := rsA.Event(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		chain = append([]*pdu.Event{se.Event}, chain...)
		id = ""
		if prev := se.Event.PrevEventIDs(); len(prev) > 0 {
			id = prev[0]
		}
	}
	if err := rsB.ImportCreate(ctx, chain[0]); err != nil {
		t.Fatal(err)
	}
	ro.joinB(t)
	join, err := rsA.Event(ctx, ro.last)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rsB.InputReceived(ctx, ro.roomID, append(chain[1:], join.Event))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Output == nil {
			t.Fatalf("replaying A's events into B: %+v", r)
		}
	}
}

// sendTxn sends a transaction from A to B, signed by A.
func (ro *roomOnA) sendTxn(t *testing.T, txnID string, body any) (map[string]map[string]string, error) {
	t.Helper()
	var out struct {
		PDUs map[string]map[string]string `json:"pdus"`
	}
	err := ro.a.SignedFederationClient().DoJSON(ctxT(t), http.MethodPut, ro.b.Name, "/_matrix/federation/v1/send/"+txnID, body, &out)
	return out.PDUs, err
}

func (ro *roomOnA) txn(pdus ...json.RawMessage) map[string]any {
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	return map[string]any{"origin": ro.a.Name, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus}
}

func (ro *roomOnA) eventJSON(t *testing.T, id string) json.RawMessage {
	t.Helper()
	se, err := ro.a.Roomserver().Event(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return se.Event.JSON()
}

// buildOnA builds an event of A's server in the room, after ro.last,
// signed with key under A's current key ID.
func (ro *roomOnA) buildOnA(t *testing.T, sender string, key ed25519.PrivateKey) *pdu.Event {
	t.Helper()
	ctx := ctxT(t)
	rs := ro.a.Roomserver()
	ver, _ := rs.RoomVersion(ctx, ro.roomID)
	content := []byte(`{"msgtype":"m.text","body":"hi"}`)
	var authIDs []string
	for _, k := range auth.SelectAuthEvents(ver, "m.room.message", nil, sender, content) {
		if ev, _ := rs.CurrentStateEvent(ctx, ro.roomID, k); ev != nil {
			authIDs = append(authIDs, ev.EventID())
		}
	}
	last, err := rs.Event(ctx, ro.last)
	if err != nil {
		t.Fatal(err)
	}
	keyID, current := ro.a.Keys().Current()
	if key == nil {
		key = current
	}
	ev, err := pdu.ProtoEvent{Type: "m.room.message", Sender: sender, RoomID: ro.roomID, Content: content,
		PrevEvents: []string{ro.last}, AuthEvents: authIDs, Depth: last.Event.Depth() + 1,
		OriginServerTS: time.Now().UnixMilli()}.Build(ver, ro.a.Name, keyID, key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSendTransaction(t *testing.T) {
	ro := newRoomOnA(t)
	ro.shareWithB(t)
	ctx := ctxT(t)
	rsB := ro.b.Roomserver()
	say := func(body string) string {
		return ro.send(t, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": body})
	}

	// One new event: accepted.
	m1 := say("one")
	got, err := ro.sendTxn(t, "t1", ro.txn(ro.eventJSON(t, m1)))
	if err != nil || len(got) != 1 || got[m1] == nil || got[m1]["error"] != "" {
		t.Fatalf("one event: %v, %v", got, err)
	}
	if se, err := rsB.Event(ctx, m1); err != nil || se.StreamPos == 0 {
		t.Fatalf("B does not hold %s in the timeline: %+v, %v", m1, se, err)
	}

	// A gap: only the latest of three; B fetches the others from A.
	m2, m3, m4 := say("two"), say("three"), say("four")
	got, err = ro.sendTxn(t, "t2", ro.txn(ro.eventJSON(t, m4)))
	if err != nil || len(got) != 1 || got[m4]["error"] != "" {
		t.Fatalf("gap: %v, %v", got, err)
	}
	for _, id := range []string{m2, m3, m4} {
		if se, err := rsB.Event(ctx, id); err != nil || se.StreamPos == 0 {
			t.Fatalf("after the gap, B lacks %s: %v", id, err)
		}
	}

	// The same txnId again: the same answer, nothing handled again.
	again, err := ro.sendTxn(t, "t2", ro.txn(ro.eventJSON(t, m1)))
	if err != nil || len(again) != 1 || again[m4] == nil {
		t.Fatalf("replayed txnId answered %v, %v", again, err)
	}

	// An event failing auth (the sender is not in the room): rejected,
	// stored as such.
	bad := ro.buildOnA(t, "@mallory:"+ro.a.Name, nil)
	got, err = ro.sendTxn(t, "t3", ro.txn(bad.JSON()))
	if err != nil || !strings.HasPrefix(got[bad.EventID()]["error"], "rejected") {
		t.Fatalf("unauthorised event: %v, %v", got, err)
	}
	if se, err := rsB.Event(ctx, bad.EventID()); err != nil || se.StreamPos != 0 {
		t.Fatalf("the rejected event: %+v, %v", se, err)
	}

	// A forged signature (another key under A's key ID): an error, not
	// stored.
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged := ro.buildOnA(t, "@alice:"+ro.a.Name, otherKey)
	got, err = ro.sendTxn(t, "t4", ro.txn(forged.JSON()))
	if err != nil || got[forged.EventID()]["error"] == "" {
		t.Fatalf("forged signature: %v, %v", got, err)
	}
	if _, err := rsB.Event(ctx, forged.EventID()); !errors.Is(err, roomserver.ErrEventNotFound) {
		t.Fatalf("the forged event was stored: %v", err)
	}

	// An unknown room: an error for the PDU.
	other := strings.Replace(string(ro.eventJSON(t, m1)), ro.roomID, "!elsewhere:"+ro.a.Name, 1)
	got, err = ro.sendTxn(t, "t5", ro.txn(json.RawMessage(other)))
	if err != nil || len(got) != 1 {
		t.Fatalf("unknown room: %v, %v", got, err)
	}
	for _, r := range got {
		if !strings.Contains(r["error"], "not in room") {
			t.Fatalf("unknown room: %v", got)
		}
	}

	// Refused transactions.
	wrongOrigin := ro.txn()
	wrongOrigin["origin"] = ro.b.Name
	_, err = ro.sendTxn(t, "t6", wrongOrigin)
	wantFedErr(t, "origin mismatch", err, 400, "M_BAD_JSON")
	many := make([]json.RawMessage, 51)
	for i := range many {
		many[i] = ro.eventJSON(t, m1)
	}
	_, err = ro.sendTxn(t, "t7", ro.txn(many...))
	wantFedErr(t, "51 PDUs", err, 400, "M_BAD_JSON")
	notObjects := ro.txn()
	notObjects["pdus"] = []any{1}
	_, err = ro.sendTxn(t, "t8", notObjects)
	wantFedErr(t, "a PDU that is not an object", err, 400, "M_BAD_JSON")
	huge := ro.txn()
	huge["edus"] = []any{map[string]any{"edu_type": "x", "content": map[string]string{"pad": strings.Repeat("x", 6<<20)}}}
	_, err = ro.sendTxn(t, "t9", huge)
	wantFedErr(t, "oversized", err, 413, "M_TOO_LARGE")
	// A body over the general limit but within the transaction limit is
	// fine for /send only.
	big := ro.txn()
	big["edus"] = []any{map[string]any{"edu_type": "x", "content": map[string]string{"pad": strings.Repeat("x", 2<<20)}}}
	if _, err := ro.sendTxn(t, "t10", big); err != nil {
		t.Fatalf("a 2 MiB transaction: %v", err)
	}
	var fe *fedclient.Error
	err = ro.a.SignedFederationClient().DoJSON(ctx, http.MethodPost, ro.b.Name, "/_matrix/federation/v1/get_missing_events/"+ro.roomID, big, nil)
	if !errors.As(err, &fe) || fe.Status != 413 {
		t.Fatalf("2 MiB to another endpoint: %v", err)
	}
}
