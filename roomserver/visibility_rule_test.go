package roomserver

import "testing"

func TestEventVisibility(t *testing.T) {
	st := func(hv, m string) VisibilityState { return VisibilityState{HistoryVisibility: hv, Membership: m} }
	for _, c := range []struct {
		name   string
		before VisibilityState
		after  *VisibilityState
		want   Verdict
	}{
		{"world_readable, stranger", st("world_readable", ""), nil, Allowed},
		{"shared, joined at the event", st("shared", "join"), nil, Allowed},
		{"shared, not joined at the event", st("shared", "leave"), nil, IfJoinedNow},
		{"missing visibility counts as shared", st("", ""), nil, IfJoinedNow},
		{"unknown visibility counts as shared", st("sometimes", "invite"), nil, IfJoinedNow},
		{"invited, invited", st("invited", "invite"), nil, Allowed},
		{"invited, not invited", st("invited", "leave"), nil, Denied},
		{"joined, joined", st("joined", "join"), nil, Allowed},
		{"joined, invited", st("joined", "invite"), nil, Denied},
		{"the state after allows", st("joined", ""), &VisibilityState{"world_readable", ""}, Allowed},
		{"the state after is no worse than before", st("shared", "join"), &VisibilityState{"joined", "leave"}, Allowed},
		{"the state after as shared", st("joined", "invite"), &VisibilityState{"shared", "leave"}, IfJoinedNow},
	} {
		if got := EventVisibility(c.before, c.after); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		v         Verdict
		joinedNow bool
		want      bool
	}{
		{Allowed, false, true}, {IfJoinedNow, true, true}, {IfJoinedNow, false, false}, {Denied, true, false},
	} {
		if got := c.v.Allows(c.joinedNow); got != c.want {
			t.Errorf("%v.Allows(%v) = %v", c.v, c.joinedNow, got)
		}
	}
	for raw, want := range map[string]string{
		`{"content":{"history_visibility":"joined"}}`:   "joined",
		`{"content":{"history_visibility":"nonsense"}}`: "shared",
		`{"content":{}}`:                       "shared",
		`{"content":{"history_visibility":1}}`: "shared",
	} {
		if got := HistoryVisibilityOf([]byte(raw)); got != want {
			t.Errorf("HistoryVisibilityOf(%s) = %q, want %q", raw, got, want)
		}
	}
	self, other := "@u:x", "@v:x"
	empty := ""
	if !StateAfterCounts("m.room.member", &self, self) || StateAfterCounts("m.room.member", &other, self) ||
		!StateAfterCounts("m.room.history_visibility", &empty, self) || StateAfterCounts("m.room.history_visibility", nil, self) ||
		StateAfterCounts("m.room.message", nil, self) {
		t.Error("StateAfterCounts")
	}
}

func TestServerEventVisibility(t *testing.T) {
	st := func(hv string, joined, invited bool) ServerVisibilityState {
		return ServerVisibilityState{HistoryVisibility: hv, Joined: joined, Invited: invited}
	}
	for _, c := range []struct {
		name   string
		before ServerVisibilityState
		after  *ServerVisibilityState
		want   Verdict
	}{
		{"world_readable, no members", st("world_readable", false, false), nil, Allowed},
		{"shared, a user joined", st("shared", true, false), nil, Allowed},
		{"shared, no user joined", st("shared", false, true), nil, IfJoinedNow},
		{"missing counts as shared", st("", false, false), nil, IfJoinedNow},
		{"invited, a user invited", st("invited", false, true), nil, Allowed},
		{"invited, nobody invited", st("invited", false, false), nil, Denied},
		{"joined, a user joined", st("joined", true, false), nil, Allowed},
		{"joined, only invited", st("joined", false, true), nil, Denied},
		{"the state after allows", st("joined", false, false), &ServerVisibilityState{"joined", true, false}, Allowed},
		{"the state after is no worse", st("joined", true, false), &ServerVisibilityState{"joined", false, false}, Allowed},
	} {
		if got := ServerEventVisibility(c.before, c.after); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	b, other, empty := "@u:b.example:8448", "@u:c.example", ""
	if !ServerStateAfterCounts("m.room.member", &b, "b.example:8448") || ServerStateAfterCounts("m.room.member", &other, "b.example:8448") ||
		!ServerStateAfterCounts("m.room.history_visibility", &empty, "x") || ServerStateAfterCounts("m.room.message", nil, "x") {
		t.Error("ServerStateAfterCounts")
	}
	for id, want := range map[string]string{"@u:b.example:8448": "b.example:8448", "@u:x": "x", "nocolon": ""} {
		if got := UserServer(id); got != want {
			t.Errorf("UserServer(%q) = %q, want %q", id, got, want)
		}
	}
}
