package auth

import (
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

var plKey = pdu.StateKey{Type: typePowerLevels}

func TestPowerLevelsDefaults(t *testing.T) {
	for n := 1; n <= 12; n++ {
		r := newRoom(t, n, `"additional_creators":["`+bob+`"]`, false)
		p, err := PowerLevelsFromState(r.create, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Ban != 50 || p.Kick != 50 || p.Redact != 50 || p.Invite != 0 || p.StateDefault != 50 ||
			p.EventsDefault != 0 || p.UsersDefault != 0 || p.NotificationLevel("room") != 50 {
			t.Errorf("v%d defaults: %+v", n, p)
		}
		if got := p.EventLevel("m.room.name", true); got != 50 {
			t.Errorf("v%d state level %d", n, got)
		}
		if got := p.EventLevel("m.room.message", false); got != 0 {
			t.Errorf("v%d message level %d", n, got)
		}
		want := int64(DefaultCreatorLevel)
		if n >= 12 {
			want = CreatorLevel
		}
		if got := p.UserLevel(alice); got != want {
			t.Errorf("v%d creator level %d, want %d", n, got, want)
		}
		wantBob := int64(0)
		if n >= 12 {
			wantBob = CreatorLevel
		}
		if got := p.UserLevel(bob); got != wantBob {
			t.Errorf("v%d bob level %d, want %d", n, got, wantBob)
		}
		if p.UserLevel(carol) != 0 {
			t.Errorf("v%d carol level %d", n, p.UserLevel(carol))
		}
	}
}

// Versions 1 to 10 take the creator from content.creator, 11+ from sender.
func TestPowerLevelsCreator(t *testing.T) {
	for n := 1; n <= 11; n++ {
		r := newRoom(t, n, "", true)
		r.prev = nil
		content := `{"creator":"` + carol + `"}`
		create := r.event(alice, typeCreate, sp(""), content)
		p, err := PowerLevelsFromState(create, nil)
		if err != nil {
			t.Fatal(err)
		}
		creator, other := carol, alice
		if n >= 11 {
			creator, other = alice, carol
		}
		if p.UserLevel(creator) != 100 || p.UserLevel(other) != 0 {
			t.Errorf("v%d: creator %s %d, other %d", n, creator, p.UserLevel(creator), p.UserLevel(other))
		}
		if n <= 10 {
			// A creator that is not a string names nobody.
			create = r.event(alice, typeCreate, sp(""), `{"creator":5}`)
			p, _ = PowerLevelsFromState(create, nil)
			if p.UserLevel(alice) != 0 || len(p.Users) != 0 {
				t.Errorf("v%d: non-string creator gave %v", n, p.Users)
			}
		}
	}
	if _, err := PowerLevelsFromState(nil, nil); err == nil {
		t.Fatal("no create event accepted")
	}
}

func TestParsePowerLevels(t *testing.T) {
	v5, v9, v10 := version(t, 5), version(t, 9), version(t, 10)
	p, err := ParsePowerLevels(v10, []byte(`{"ban":70,"kick":-3,"redact":1,"invite":2,"state_default":3,"events_default":4,"users_default":5,
		"events":{"m.room.name":90},"notifications":{"room":7,"x":8},"users":{"@a:b":80}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Ban != 70 || p.Kick != -3 || p.Redact != 1 || p.Invite != 2 || p.StateDefault != 3 || p.EventsDefault != 4 || p.UsersDefault != 5 {
		t.Fatalf("%+v", p)
	}
	if p.EventLevel("m.room.name", false) != 90 || p.EventLevel("other", true) != 3 || p.EventLevel("other", false) != 4 {
		t.Fatal("event levels")
	}
	if p.NotificationLevel("room") != 7 || p.NotificationLevel("x") != 8 || p.NotificationLevel("y") != 50 {
		t.Fatal("notification levels")
	}
	if p.UserLevel("@a:b") != 80 || p.UserLevel("@c:d") != 5 || p.IsCreator("@a:b") {
		t.Fatal("user levels")
	}

	for _, c := range []struct {
		ver     *pdu.RoomVersion
		content string
		want    string // "" for success
		ban     int64
	}{
		{v5, `{"ban":50.99}`, "", 50},
		{v5, `{"ban":-50.99}`, "", -50},
		{v5, `{"ban":5e1}`, "", 50},
		{v5, `{"ban":1e400}`, "out of range", 0},
		{v5, `{"ban":9.3e18}`, "out of range", 0},
		{v5, `{"ban":9007199254740993}`, "", 9007199254740993},
		{v9, `{"ban":9007199254740993}`, "out of range", 0},
		{v9, `{"ban":1.5}`, "not an integer", 0},
		{v9, `{"ban":"\t-0042\n"}`, "", -42},
		{v9, `{"ban":"+"}`, "not an integer", 0},
		{v9, `{"ban":"１２"}`, "not an integer", 0},
		{v9, `{"ban":"9223372036854775808"}`, "out of range", 0},
		{v10, `{"ban":9007199254740991}`, "", 9007199254740991},
		{v10, `{"ban":-9007199254740991}`, "", -9007199254740991},
		{v10, `{"ban":9007199254740992}`, "out of range", 0},
		{v10, `{"ban":9223372036854775807}`, "out of range", 0},
		{v10, `[]`, "content is not an object", 0},
		{v10, `"x"`, "content is not an object", 0},
		{v10, ``, "content is not an object", 0},
		{v10, `{"users":{"@a:b":1,"x":2}}`, "is not a user ID", 0},
	} {
		p, err := ParsePowerLevels(c.ver, []byte(c.content))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("v%s %s: %v", c.ver.ID, c.content, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("v%s %s: got %v, want %q", c.ver.ID, c.content, err, c.want)
		case c.want == "" && p.Ban != c.ban:
			t.Errorf("v%s %s: ban %d, want %d", c.ver.ID, c.content, p.Ban, c.ban)
		}
	}
	if _, err := ParsePowerLevels(nil, []byte(`{}`)); err == nil {
		t.Fatal("nil version accepted")
	}
}

func TestUserIDGrammar(t *testing.T) {
	for s, want := range map[string]bool{
		"@a:b.test":        true,
		"@:b.test":         true, // historical: empty localpart
		"@ünï:b.test":      true,
		"@a:b.test:8448":   true,
		"@a:[::1]":         true,
		"@a:[::1]:80":      true,
		"@a:1.2.3.4":       true,
		"a:b.test":         false,
		"@a":               false,
		"@a:":              false,
		"@a:b_c":           false,
		"@a:b.test:":       false,
		"@a:b.test:123456": false,
		"@a:b.test:12a":    false,
		"@a:[::1":          false,
		"@a:[x]":           false,
		"@a:[::1]x":        false,
		"@a:[:]":           false,
		"@a\x00:b.test":    false,
		"@" + strings.Repeat("a", 250) + ":b.test": false,
	} {
		if got := validUserID(s); got != want {
			t.Errorf("validUserID(%q) = %v", s, got)
		}
	}
}
