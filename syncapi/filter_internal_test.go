package syncapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/myelin-chat/myelin/internal/httputil"
)

func errCode(err error) string {
	var he *httputil.Error
	if errors.As(err, &he) {
		return he.Code
	}
	return ""
}

func TestParseFilterErrors(t *testing.T) {
	for _, c := range []struct{ in, code string }{
		{`{`, "M_NOT_JSON"},
		{`nope`, "M_NOT_JSON"},
		{`[]`, "M_BAD_JSON"},
		{`"x"`, "M_BAD_JSON"},
		{`{"room":[]}`, "M_BAD_JSON"},
		{`{"room":{"timeline":{"limit":-1}}}`, "M_BAD_JSON"},
		{`{"room":{"timeline":{"limit":2.5}}}`, "M_BAD_JSON"},
		{`{"room":{"timeline":{"types":[1]}}}`, "M_BAD_JSON"},
		{`{"room":{"rooms":["#alias:x"]}}`, "M_BAD_JSON"},
		{`{"room":{"state":{"not_senders":["bob"]}}}`, "M_BAD_JSON"},
		{`{"presence":{"senders":["!r:x"]}}`, "M_BAD_JSON"},
		{`{"event_format":"xml"}`, "M_BAD_JSON"},
		{`{"event_fields":[""]}`, "M_BAD_JSON"},
		{`{"room":{"ephemeral":{"rooms":"!r:x"}}}`, "M_BAD_JSON"},
	} {
		if _, err := ParseFilter([]byte(c.in)); errCode(err) != c.code {
			t.Errorf("ParseFilter(%s) = %v, want %s", c.in, err, c.code)
		}
	}
	f, err := ParseFilter([]byte(`{"room":{"timeline":{"limit":500,"types":[]}},"unknown_field":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Room.Timeline.timelineLimit(10); got != maxTimelineLimit {
		t.Errorf("limit 500 capped to %d", got)
	}
	if f.Room.Timeline.matches("m.room.message", "@a:x") {
		t.Error("types: [] matched an event")
	}
	if (&RoomEventFilter{}).timelineLimit(10) != 10 {
		t.Error("default limit")
	}
}

func TestFilterMatching(t *testing.T) {
	var f RoomEventFilter
	if err := json.Unmarshal([]byte(`{"types":["m.room.*","org.x"],"not_types":["m.room.member"],
		"not_senders":["@spam:x"],"rooms":["!a:x","!b:x"],"not_rooms":["!b:x"],"contains_url":true}`), &f); err != nil {
		t.Fatal(err)
	}
	url := func() []byte { return []byte(`{"url":"mxc://x/y"}`) }
	noURL := func() []byte { return []byte(`{"url":5}`) }
	for _, c := range []struct {
		room, typ, sender string
		content           func() []byte
		want              bool
	}{
		{"!a:x", "m.room.message", "@a:x", url, true},
		{"!a:x", "org.x", "@a:x", url, true},
		{"!a:x", "org.xy", "@a:x", url, false},
		{"!a:x", "m.room.member", "@a:x", url, false},
		{"!a:x", "m.room.message", "@spam:x", url, false},
		{"!b:x", "m.room.message", "@a:x", url, false},
		{"!c:x", "m.room.message", "@a:x", url, false},
		{"!a:x", "m.room.message", "@a:x", noURL, false},
	} {
		if got := f.matchesEvent(c.room, c.typ, c.sender, c.content); got != c.want {
			t.Errorf("matchesEvent(%s, %s, %s) = %v", c.room, c.typ, c.sender, got)
		}
	}
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"m.*", "m.room", true}, {"m.*", "x.m", false}, {"*.member", "m.room.member", true},
		{"m.*.member", "m.room.member", true}, {"m.*.member", "m.member", false}, {"a*a", "a", false},
		{"a*b*c", "abc", true}, {"a*b*c", "acb", false}, {"exact", "exact", true}, {"exact", "exactly", false},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}
