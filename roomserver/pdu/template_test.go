package pdu

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// A second server's signature is added without disturbing the first, and
// both verify; the event ID stays.
func TestAddSignature(t *testing.T) {
	for _, id := range KnownRoomVersions() {
		ver, _ := GetRoomVersion(id)
		_, msg := buildChain(t, ver)
		pub2, key2, _ := ed25519.GenerateKey(nil)
		signed, err := msg.AddSignature("b.example", "ed25519:b", key2)
		if err != nil {
			t.Fatalf("v%s: %v", id, err)
		}
		if signed.EventID() != msg.EventID() {
			t.Fatalf("v%s: event ID changed from %s to %s", id, msg.EventID(), signed.EventID())
		}
		if err := signed.VerifySignature("b.example", "ed25519:b", pub2); err != nil {
			t.Fatalf("v%s: the added signature: %v", id, err)
		}
		pub1 := specKey(t).Public().(ed25519.PublicKey)
		if err := signed.VerifySignature("a.example", "ed25519:1", pub1); err != nil {
			t.Fatalf("v%s: the original signature: %v", id, err)
		}
		if err := signed.CheckContentHash(); err != nil {
			t.Fatalf("v%s: %v", id, err)
		}
	}
}

// A template read back from an event rebuilds into an event with the same
// fields; a template without its room or prev events is refused.
func TestParseTemplate(t *testing.T) {
	for _, id := range KnownRoomVersions() {
		ver, _ := GetRoomVersion(id)
		_, msg := buildChain(t, ver)
		p, err := ParseTemplate(msg.JSON(), ver)
		if err != nil {
			t.Fatalf("v%s: %v", id, err)
		}
		if p.Type != msg.Type() || p.Sender != msg.Sender() || p.RoomID != msg.RoomID() || p.Depth != msg.Depth() ||
			strings.Join(p.PrevEvents, ",") != strings.Join(msg.PrevEventIDs(), ",") ||
			strings.Join(p.AuthEvents, ",") != strings.Join(msg.AuthEventIDs(), ",") || string(p.Content) != string(msg.Content()) {
			t.Fatalf("v%s: template %+v differs from %s", id, p, msg.JSON())
		}
	}
	ver, _ := GetRoomVersion("10")
	for _, bad := range []string{
		`{"type":"m.room.member","sender":"@a:b","content":{},"prev_events":["$x"],"auth_events":[],"depth":3}`,
		`{"type":"m.room.member","sender":"@a:b","room_id":"!r:b","content":{},"prev_events":[],"auth_events":[],"depth":3}`,
		`{"type":"m.room.member","sender":"@a:b","room_id":"!r:b","content":"x","prev_events":["$x"],"auth_events":[],"depth":3}`,
		`[1]`,
	} {
		if _, err := ParseTemplate([]byte(bad), ver); err == nil {
			t.Errorf("template %s accepted", bad)
		}
	}
}
