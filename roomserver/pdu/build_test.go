package pdu

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }

// buildChain builds a create event and a message after it in version ver.
func buildChain(t *testing.T, ver *RoomVersion) (create, msg *Event) {
	t.Helper()
	key := specKey(t)
	p := ProtoEvent{
		Type: "m.room.create", StateKey: strp(""), Sender: "@alice:a.example",
		Content: []byte(`{"room_version":"` + ver.ID + `"}`), Depth: 1, OriginServerTS: 1000,
	}
	if !ver.CreateEventIsRoomID {
		p.RoomID = "!room:a.example"
	}
	if ver.EventIDs == EventIDOpaque {
		p.EventID = "$create:a.example"
	}
	create, err := p.Build(ver, "a.example", "ed25519:1", key)
	if err != nil {
		t.Fatalf("v%s build create: %v", ver.ID, err)
	}
	m := ProtoEvent{
		Type: "m.room.message", Sender: "@alice:a.example", RoomID: create.RoomID(),
		Content: []byte(`{"body":"hi","msgtype":"m.text"}`), Depth: 2, OriginServerTS: 2000,
		PrevEvents: []string{create.EventID()},
	}
	if !ver.CreateEventIsRoomID {
		m.AuthEvents = []string{create.EventID()}
	}
	if ver.EventIDs == EventIDOpaque {
		m.EventID = "$msg:a.example"
	}
	msg, err = m.Build(ver, "a.example", "ed25519:1", key)
	if err != nil {
		t.Fatalf("v%s build message: %v", ver.ID, err)
	}
	return create, msg
}

func TestBuildParseAllVersions(t *testing.T) {
	pub := specKey(t).Public().(ed25519.PublicKey)
	for _, id := range KnownRoomVersions() {
		ver, _ := GetRoomVersion(id)
		create, msg := buildChain(t, ver)
		for _, ev := range []*Event{create, msg} {
			again, err := ParseEvent(ev.JSON(), ver)
			if err != nil {
				t.Fatalf("v%s: ParseEvent(Build output): %v", id, err)
			}
			if again.EventID() != ev.EventID() || again.RoomID() != ev.RoomID() {
				t.Errorf("v%s: reparse changed IDs: %s %s vs %s %s", id, again.EventID(), again.RoomID(), ev.EventID(), ev.RoomID())
			}
			if err := ev.CheckContentHash(); err != nil {
				t.Errorf("v%s: CheckContentHash: %v", id, err)
			}
			if err := ev.VerifySignature("a.example", "ed25519:1", pub); err != nil {
				t.Errorf("v%s: VerifySignature: %v", id, err)
			}
			if got := RequiredSigners(ev); len(got) != 1 || got[0] != "a.example" {
				t.Errorf("v%s: RequiredSigners = %v", id, got)
			}
		}
		switch ver.EventIDs {
		case EventIDOpaque:
			if create.EventID() != "$create:a.example" {
				t.Errorf("v%s: event ID %s", id, create.EventID())
			}
		case EventIDHashStd, EventIDHashURL:
			if len(create.EventID()) != 44 || create.EventID()[0] != '$' {
				t.Errorf("v%s: event ID %q is not $ + 43 base64 characters", id, create.EventID())
			}
			if ver.EventIDs == EventIDHashURL && strings.ContainsAny(create.EventID(), "+/") {
				t.Errorf("v%s: event ID %q is not URL-safe", id, create.EventID())
			}
		}
		if ver.CreateEventIsRoomID {
			if create.RoomID() != "!"+create.EventID()[1:] || msg.RoomID() != create.RoomID() {
				t.Errorf("v%s: room ID %q for create %q", id, create.RoomID(), create.EventID())
			}
			if strings.Contains(string(create.JSON()), `"room_id"`) {
				t.Errorf("v%s: create event carries room_id: %s", id, create.JSON())
			}
		}
		if len(msg.PrevEventIDs()) != 1 || msg.PrevEventIDs()[0] != create.EventID() {
			t.Errorf("v%s: prev_events %v", id, msg.PrevEventIDs())
		}
	}
}

func TestRedactsAndMembership(t *testing.T) {
	key := specKey(t)
	for _, id := range KnownRoomVersions() {
		ver, _ := GetRoomVersion(id)
		p := ProtoEvent{Type: "m.room.redaction", Sender: "@a:x", RoomID: "!r:x", Depth: 3,
			Redacts: "$target:x", PrevEvents: []string{"$p:x"}, AuthEvents: []string{"$c:x"}}
		if ver.EventIDs == EventIDOpaque {
			p.EventID = "$r:x"
		}
		ev, err := p.Build(ver, "x", "ed25519:1", key)
		if err != nil {
			t.Fatalf("v%s: %v", id, err)
		}
		if ev.Redacts() != "$target:x" {
			t.Errorf("v%s: Redacts() = %q", id, ev.Redacts())
		}
		inContent := strings.Contains(string(ev.Content()), `"redacts"`)
		if inContent != ver.RedactsInContent {
			t.Errorf("v%s: redacts in content = %v: %s", id, inContent, ev.JSON())
		}
		m := ProtoEvent{Type: "m.room.member", StateKey: strp("@a:x"), Sender: "@a:x", RoomID: "!r:x",
			Content: []byte(`{"membership":"join"}`), Depth: 4}
		if ver.EventIDs == EventIDOpaque {
			m.EventID = "$m:x"
		}
		mev, err := m.Build(ver, "x", "ed25519:1", key)
		if err != nil {
			t.Fatalf("v%s: %v", id, err)
		}
		if mev.Membership() != "join" || ev.Membership() != "" {
			t.Errorf("v%s: Membership() = %q, %q", id, mev.Membership(), ev.Membership())
		}
	}
	if got := RoomIDFromCreateEventID("$abc"); got != "!abc" {
		t.Errorf("RoomIDFromCreateEventID = %q", got)
	}
	if got := RoomIDFromCreateEventID("abc"); got != "" {
		t.Errorf("RoomIDFromCreateEventID(no sigil) = %q", got)
	}
}
