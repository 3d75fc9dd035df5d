package federation_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/myelin-chat/myelin/federation/serverkeys"
	"github.com/myelin-chat/myelin/internal/servertest"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// sendMessage has user send a message in a new room of s and returns the
// event as s stored it.
func sendMessage(t *testing.T, s *servertest.Server, token, roomID, txn string) *pdu.Event {
	t.Helper()
	var sent struct {
		EventID string `json:"event_id"`
	}
	s.DoJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+txn, token,
		map[string]string{"msgtype": "m.text", "body": "hello " + txn}, &sent)
	stored, err := s.Roomserver().Event(ctxT(t), sent.EventID)
	if err != nil {
		t.Fatal(err)
	}
	return stored.Event
}

// signingKeyOf returns the ID of the key s's signature on ev uses.
func signingKeyOf(t *testing.T, ev *pdu.Event, server string) string {
	t.Helper()
	for id := range ev.Signatures()[server] {
		return id
	}
	t.Fatalf("event %s has no signature of %s", ev.EventID(), server)
	return ""
}

// TestKeyRotation: after A rotates its key, servers that cached the old
// key, and servers that never saw it, still verify A's old events (room
// version 11, where the key must be valid when the event was sent), and
// verify its new ones with the new key.
func TestKeyRotation(t *testing.T) {
	servers := servertest.Start(t, 3)
	a, b, c := servers[0], servers[1], servers[2]
	_, token := a.RegisterUser(t, "alice")
	var room struct {
		RoomID string `json:"room_id"`
	}
	a.DoJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", token, map[string]any{"room_version": "11"}, &room)
	before := sendMessage(t, a, token, room.RoomID, "1")
	oldID := signingKeyOf(t, before, a.Name)

	verify := func(who *servertest.Server, ev *pdu.Event, keyID string) error {
		pub, err := who.ServerKeys().VerifyKey(ctxT(t), a.Name, keyID, ev.OriginServerTS())
		if err != nil {
			return err
		}
		return ev.VerifySignature(a.Name, keyID, pub)
	}
	// B caches A's key while it is current.
	if err := verify(b, before, oldID); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	rotatedAt := time.Now()
	if err := a.Keys().Rotate(rotatedAt); err != nil {
		t.Fatal(err)
	}
	after := sendMessage(t, a, token, room.RoomID, "2")
	newID := signingKeyOf(t, after, a.Name)
	if newID == oldID {
		t.Fatalf("the event after rotation is signed with the old key %s", oldID)
	}
	for _, s := range []*servertest.Server{b, c} {
		// The new event's key is unknown to B (and C): fetched, and the
		// response lists the old key as expired at the rotation.
		if err := verify(s, after, newID); err != nil {
			t.Fatalf("%s, new event: %v", s.Name, err)
		}
		// The old event still verifies, from the cache (B) or from
		// old_verify_keys (C).
		if err := verify(s, before, oldID); err != nil {
			t.Fatalf("%s, old event: %v", s.Name, err)
		}
		// An event claiming to be signed with the old key after it expired
		// is refused in room versions that check validity, and accepted in
		// those that do not.
		late := rotatedAt.UnixMilli() + 1000
		if _, err := s.ServerKeys().VerifyKey(ctxT(t), a.Name, oldID, late); !errors.Is(err, serverkeys.ErrNoKey) {
			t.Fatalf("%s: old key after its expiry: %v, want ErrNoKey", s.Name, err)
		}
		if _, err := s.ServerKeys().VerifyKey(ctxT(t), a.Name, oldID, serverkeys.AnyTime); err != nil {
			t.Fatalf("%s: old key in a room version without validity: %v", s.Name, err)
		}
	}
	// The key response A now publishes lists the old key.
	kr, _ := fetchKeys(t, a.FedClient, a.FederationURL, a.Name)
	if old, ok := kr.OldVerifyKeys[oldID]; !ok || old.ExpiredTS != rotatedAt.UnixMilli() {
		t.Fatalf("old_verify_keys %v", kr.OldVerifyKeys)
	}
}
