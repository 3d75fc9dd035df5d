package pushrules

import (
	"encoding/json"
	"testing"
)

// One table per condition kind, from the spec's examples (push module,
// "Conditions") and the edges around them. Each case builds an override
// rule with the one condition and asks whether it matches.

type condCase struct {
	name  string
	event string
	want  bool
}

func runCond(t *testing.T, cond string, room *RoomContext, owner string, cases []condCase) {
	t.Helper()
	c, err := ParseCondition([]byte(cond))
	if err != nil {
		t.Fatalf("condition %s: %v", cond, err)
	}
	rs := &Ruleset{Override: []*Rule{{RuleID: "test", Enabled: true, Conditions: []Condition{c}, Actions: []Action{Notify()}}}}
	compiled := NewCompiler().Compile(rs, owner)
	if room == nil {
		room = &RoomContext{}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := NewEvent([]byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			got := compiled.Evaluate(ev, owner, room) != nil
			if got != tc.want {
				t.Errorf("condition %s on %s: matched %v, want %v", cond, tc.event, got, tc.want)
			}
		})
	}
}

func TestEventMatch(t *testing.T) {
	topic := func(v string) string {
		return `{"type":"m.room.topic","state_key":"","sender":"@example:example.org","content":{"topic":` + v + `}}`
	}
	runCond(t, `{"kind":"event_match","key":"content.topic","pattern":"lunc?*"}`, nil, "@me:x", []condCase{
		{"spec example", topic(`"Lunch plans"`), true},
		{"case-insensitive, * matches nothing", topic(`"LUNCH"`), true},
		{"leading space", topic(`" lunch"`), false},
		{"? needs a character", topic(`"lunc"`), false},
		{"null is not a string", topic(`null`), false},
		{"a number is not a string", topic(`5`), false},
		{"absent", `{"type":"m.room.topic","content":{}}`, false},
	})
	body := func(v string) string {
		return `{"type":"m.room.message","sender":"@example:example.org","content":{"body":` + v + `}}`
	}
	runCond(t, `{"kind":"event_match","key":"content.body","pattern":"ex*ple"}`, nil, "@me:x", []condCase{
		{"spec example", body(`"An example event."`), true},
		{"the whole body", body(`"exple"`), true},
		{"across words, - separates", body(`"An exciting triple-whammy"`), true},
		{"inside a word", body(`"textexample"`), false},
		{"word continues", body(`"examples"`), false},
		{"underscore is a word character", body(`"example_x"`), false},
	})
	runCond(t, `{"kind":"event_match","key":"content.body","pattern":"cake"}`, nil, "@me:x", []condCase{
		{"word", body(`"I like CAKE!"`), true},
		{"not a word", body(`"cakes"`), false},
		{"second occurrence", body(`"cakes and cake"`), true},
	})
	runCond(t, `{"kind":"event_match","key":"content.msgtype","pattern":"*"}`, nil, "@me:x", []condCase{
		{"any string", `{"content":{"msgtype":"m.text"}}`, true},
		{"empty string", `{"content":{"msgtype":""}}`, true},
		{"absent even with *", `{"content":{}}`, false},
		{"not a string even with *", `{"content":{"msgtype":true}}`, false},
	})
	runCond(t, `{"kind":"event_match","key":"state_key","pattern":""}`, nil, "@me:x", []condCase{
		{"empty state key", `{"type":"m.room.tombstone","state_key":""}`, true},
		{"no state key", `{"type":"m.room.tombstone"}`, false},
		{"other state key", `{"type":"m.room.tombstone","state_key":"x"}`, false},
	})
	runCond(t, `{"kind":"event_match","key":"content.m\\.relates_to.rel_type","pattern":"m.thread"}`, nil, "@me:x", []condCase{
		{"escaped dot", `{"content":{"m.relates_to":{"rel_type":"m.thread"}}}`, true},
		{"nested objects are not a dotted name", `{"content":{"m":{"relates_to":{"rel_type":"m.thread"}}}}`, false},
	})
	runCond(t, `{"kind":"event_match","key":"state_key","pattern":"@me:x"}`, nil, "@me:x", []condCase{
		{"the owner", `{"state_key":"@me:x"}`, true},
		{"the owner, other case", `{"state_key":"@ME:x"}`, true},
		{"someone else", `{"state_key":"@you:x"}`, false},
	})
}

func TestEventPropertyIs(t *testing.T) {
	create := func(v string) string {
		return `{"type":"m.room.create","state_key":"","content":{"creator":"@example:example.org","m.federate":` + v + `}}`
	}
	runCond(t, `{"kind":"event_property_is","key":"content.m\\.federate","value":true}`, nil, "@me:x", []condCase{
		{"spec example", create(`true`), true},
		{"a string", create(`"true"`), false},
		{"a number", create(`1`), false},
		{"false", create(`false`), false},
	})
	runCond(t, `{"kind":"event_property_is","key":"content.n","value":5}`, nil, "@me:x", []condCase{
		{"integer", `{"content":{"n":5}}`, true},
		{"float", `{"content":{"n":5.0}}`, false},
		{"string", `{"content":{"n":"5"}}`, false},
	})
	runCond(t, `{"kind":"event_property_is","key":"content.n","value":null}`, nil, "@me:x", []condCase{
		{"null", `{"content":{"n":null}}`, true},
		{"absent", `{"content":{}}`, false},
		{"an object", `{"content":{"n":{}}}`, false},
	})
	runCond(t, `{"kind":"event_property_is","key":"content.s","value":"Hello"}`, nil, "@me:x", []condCase{
		{"exact", `{"content":{"s":"Hello"}}`, true},
		{"case matters", `{"content":{"s":"hello"}}`, false},
	})
}

func TestEventPropertyContains(t *testing.T) {
	alias := func(v string) string {
		return `{"type":"m.room.canonical_alias","state_key":"","content":{"alias":"#somewhere:localhost","alt_aliases":` + v + `}}`
	}
	runCond(t, `{"kind":"event_property_contains","key":"content.alt_aliases","value":"#myroom:example.com"}`, nil, "@me:x", []condCase{
		{"spec example", alias(`["#somewhere:example.org","#myroom:example.com"]`), true},
		{"partial value", alias(`[":example.com"]`), false},
		{"not an array", alias(`"#myroom:example.com"`), false},
		{"absent", `{"content":{}}`, false},
		{"among ignored compound values", alias(`[{"a":1},"#myroom:example.com"]`), true},
	})
	runCond(t, `{"kind":"event_property_contains","key":"content.ns","value":3}`, nil, "@me:x", []condCase{
		{"integer element", `{"content":{"ns":[1,2,3]}}`, true},
		{"string element", `{"content":{"ns":["3"]}}`, false},
	})
	long := `{"content":{"m.mentions":{"user_ids":[`
	for i := range 40 {
		long += `"@u` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `:x",`
	}
	runCond(t, `{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@me:x"}`, nil, "@me:x", []condCase{
		{"mentioned", `{"content":{"m.mentions":{"user_ids":["@me:x"]}}}`, true},
		{"others mentioned", `{"content":{"m.mentions":{"user_ids":["@you:x"]}}}`, false},
		{"mentioned among many", long + `"@me:x"]}}}`, true},
		{"not among many", long + `"@zz:x"]}}}`, false},
	})
}

func TestContainsDisplayName(t *testing.T) {
	names := map[string]string{"@me:x": "Alice Smith", "@you:x": ""}
	room := &RoomContext{DisplayName: func(u string) string { return names[u] }}
	body := func(v string) string { return `{"type":"m.room.message","content":{"body":"` + v + `"}}` }
	runCond(t, `{"kind":"contains_display_name"}`, room, "@me:x", []condCase{
		{"the name", body("hi alice smith, lunch?"), true},
		{"the name at the end", body("thanks Alice Smith"), true},
		{"inside a longer word", body("Alice Smithers"), false},
		{"part of the name", body("Alice"), false},
		{"no body", `{"type":"m.room.message","content":{}}`, false},
	})
	runCond(t, `{"kind":"contains_display_name"}`, room, "@you:x", []condCase{
		{"no display name never matches", body("anything"), false},
	})
}

func TestRoomMemberCount(t *testing.T) {
	ev := `{"type":"m.room.message","content":{"body":"x"}}`
	cases := []struct {
		is    string
		count int64
		want  bool
	}{
		{"2", 2, true}, {"2", 3, false}, {"==2", 2, true},
		{"<3", 2, true}, {"<3", 3, false}, {">3", 4, true}, {">3", 3, false},
		{"<=3", 3, true}, {"<=3", 4, false}, {">=10", 10, true}, {">=10", 9, false},
	}
	for _, tc := range cases {
		runCond(t, `{"kind":"room_member_count","is":"`+tc.is+`"}`, &RoomContext{MemberCount: tc.count}, "@me:x",
			[]condCase{{tc.is, ev, tc.want}})
	}
	for _, bad := range []string{"", "abc", "=2", "< 2", "-1", "2.5"} {
		if _, err := ParseCondition([]byte(`{"kind":"room_member_count","is":"` + bad + `"}`)); err == nil {
			t.Errorf("room_member_count is %q accepted", bad)
		}
	}
}

func TestSenderNotificationPermission(t *testing.T) {
	ev := `{"type":"m.room.message","content":{"body":"@room"}}`
	levels := map[string]int64{"room": 20}
	custom := func(k string) int64 {
		if l, ok := levels[k]; ok {
			return l
		}
		return DefaultNotificationLevel
	}
	for _, tc := range []struct {
		name string
		room RoomContext
		want bool
	}{
		{"default level 50 met", RoomContext{SenderLevel: 50}, true},
		{"default level 50 not met", RoomContext{SenderLevel: 49}, false},
		{"custom level met", RoomContext{SenderLevel: 20, NotificationLevel: custom}, true},
		{"custom level not met", RoomContext{SenderLevel: 19, NotificationLevel: custom}, false},
	} {
		room := tc.room
		runCond(t, `{"kind":"sender_notification_permission","key":"room"}`, &room, "@me:x", []condCase{{tc.name, ev, tc.want}})
	}
}

func TestUnknownConditionNeverMatches(t *testing.T) {
	runCond(t, `{"kind":"org.example.future","key":"type"}`, nil, "@me:x", []condCase{
		{"any event", `{"type":"m.room.message"}`, false},
	})
	// And it survives a round trip as it came.
	c, err := ParseCondition([]byte(`{"kind":"org.example.future","extra":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	if string(b) != `{"kind":"org.example.future","extra":[1,2]}` {
		t.Errorf("round trip: %s", b)
	}
}

func TestParseConditionRefusesBadParameters(t *testing.T) {
	for _, bad := range []string{
		`[]`, `{}`, `{"kind":5}`,
		`{"kind":"event_match","key":"type"}`,
		`{"kind":"event_match","pattern":"x"}`,
		`{"kind":"event_match","key":"type","pattern":5}`,
		`{"kind":"event_property_is","key":"content.x"}`,
		`{"kind":"event_property_is","key":"content.x","value":1.5}`,
		`{"kind":"event_property_is","key":"content.x","value":9007199254740992}`,
		`{"kind":"event_property_contains","key":"content.x","value":[1]}`,
		`{"kind":"sender_notification_permission"}`,
	} {
		if _, err := ParseCondition([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
