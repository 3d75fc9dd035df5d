package pushrules

import (
	"encoding/json"
	"strings"
	"testing"
)

const me = "@alice:example.org"

// The server-default rules applied to the events each of them is for (push
// module, "Predefined Rules").
func TestDefaultRules(t *testing.T) {
	msg := func(content string) string {
		return `{"type":"m.room.message","room_id":"!r:x","sender":"@bob:x","content":` + content + `}`
	}
	group := &RoomContext{MemberCount: 10}
	dm := &RoomContext{MemberCount: 2}
	for _, tc := range []struct {
		name      string
		event     string
		room      *RoomContext
		rule      string // "" = no rule matches
		notify    bool
		highlight bool
		sound     string
	}{
		{"message in a group", msg(`{"msgtype":"m.text","body":"hello"}`), group, ".m.rule.message", true, false, ""},
		{"message in a DM", msg(`{"msgtype":"m.text","body":"hello"}`), dm, ".m.rule.room_one_to_one", true, false, `"default"`},
		{"notice", msg(`{"msgtype":"m.notice","body":"bot says"}`), group, ".m.rule.suppress_notices", false, false, ""},
		{"user mention", msg(`{"msgtype":"m.text","body":"hey","m.mentions":{"user_ids":["` + me + `"]}}`), group,
			".m.rule.is_user_mention", true, true, `"default"`},
		{"someone else's mention", msg(`{"msgtype":"m.text","body":"hey","m.mentions":{"user_ids":["@carol:x"]}}`), group,
			".m.rule.message", true, false, ""},
		{"body mention without m.mentions is a plain message", msg(`{"msgtype":"m.text","body":"alice: hi"}`), group,
			".m.rule.message", true, false, ""},
		{"room mention by a moderator", msg(`{"msgtype":"m.text","body":"@room","m.mentions":{"room":true}}`),
			&RoomContext{MemberCount: 10, SenderLevel: 50}, ".m.rule.is_room_mention", true, true, ""},
		{"room mention without the power", msg(`{"msgtype":"m.text","body":"@room","m.mentions":{"room":true}}`),
			&RoomContext{MemberCount: 10, SenderLevel: 0}, ".m.rule.message", true, false, ""},
		{"invite for me", `{"type":"m.room.member","state_key":"` + me + `","sender":"@bob:x","content":{"membership":"invite"}}`, group,
			".m.rule.invite_for_me", true, false, `"default"`},
		{"someone else's invite", `{"type":"m.room.member","state_key":"@carol:x","sender":"@bob:x","content":{"membership":"invite"}}`, group,
			".m.rule.member_event", false, false, ""},
		{"join", `{"type":"m.room.member","state_key":"@carol:x","sender":"@carol:x","content":{"membership":"join"}}`, group,
			".m.rule.member_event", false, false, ""},
		{"edit", msg(`{"msgtype":"m.text","body":"* fixed","m.new_content":{"body":"fixed"},"m.relates_to":{"rel_type":"m.replace","event_id":"$e"}}`), group,
			".m.rule.suppress_edits", false, false, ""},
		{"reaction", `{"type":"m.reaction","sender":"@bob:x","content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$e","key":"👍"}}}`, group,
			".m.rule.reaction", false, false, ""},
		{"server ACL", `{"type":"m.room.server_acl","state_key":"","sender":"@bob:x","content":{"allow":["*"]}}`, group,
			".m.rule.room.server_acl", false, false, ""},
		{"tombstone", `{"type":"m.room.tombstone","state_key":"","sender":"@bob:x","content":{"replacement_room":"!new:x"}}`, group,
			".m.rule.tombstone", true, true, ""},
		{"tombstone-typed message event", `{"type":"m.room.tombstone","sender":"@bob:x","content":{}}`, group, "", false, false, ""},
		{"call", `{"type":"m.call.invite","sender":"@bob:x","content":{"call_id":"c"}}`, group,
			".m.rule.call", true, false, `"ring"`},
		{"encrypted in a DM", `{"type":"m.room.encrypted","sender":"@bob:x","content":{"algorithm":"m.megolm.v1.aes-sha2"}}`, dm,
			".m.rule.encrypted_room_one_to_one", true, false, `"default"`},
		{"encrypted in a group", `{"type":"m.room.encrypted","sender":"@bob:x","content":{"algorithm":"m.megolm.v1.aes-sha2"}}`, group,
			".m.rule.encrypted", true, false, ""},
		{"other state", `{"type":"m.room.name","state_key":"","sender":"@bob:x","content":{"name":"n"}}`, group, "", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCompiler().Compile(Defaults(me), me)
			ev, err := NewEvent([]byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			r := c.Evaluate(ev, me, tc.room)
			if tc.rule == "" {
				if r != nil {
					t.Fatalf("rule %s matched, want none", r.RuleID)
				}
				return
			}
			if r == nil {
				t.Fatalf("no rule matched, want %s", tc.rule)
			}
			if r.RuleID != tc.rule || r.Notify != tc.notify || r.Highlight != tc.highlight || string(r.Tweaks["sound"]) != tc.sound {
				t.Errorf("got %s notify=%v highlight=%v sound=%s, want %s notify=%v highlight=%v sound=%s",
					r.RuleID, r.Notify, r.Highlight, r.Tweaks["sound"], tc.rule, tc.notify, tc.highlight, tc.sound)
			}
		})
	}
}

// The spec's list and order of default rules.
func TestDefaultRulesOrder(t *testing.T) {
	rs := Defaults(me)
	ids := func(rules []*Rule) string {
		var out []string
		for _, r := range rules {
			out = append(out, r.RuleID)
		}
		return strings.Join(out, " ")
	}
	if got, want := ids(rs.Override), ".m.rule.master .m.rule.suppress_notices .m.rule.invite_for_me .m.rule.member_event "+
		".m.rule.is_user_mention .m.rule.is_room_mention .m.rule.tombstone .m.rule.reaction .m.rule.room.server_acl .m.rule.suppress_edits"; got != want {
		t.Errorf("override: %s\nwant %s", got, want)
	}
	if got, want := ids(rs.Underride), ".m.rule.call .m.rule.encrypted_room_one_to_one .m.rule.room_one_to_one .m.rule.message .m.rule.encrypted"; got != want {
		t.Errorf("underride: %s\nwant %s", got, want)
	}
	if rs.Override[0].Enabled {
		t.Error(".m.rule.master is enabled by default")
	}
	// The JSON clients get: every kind present, conditions on override
	// and underride rules (even empty), each rule marked default.
	b, _ := json.Marshal(rs)
	var back map[string][]map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if back[string(k)] == nil {
			t.Errorf("kind %s missing from %s", k, b)
		}
	}
	master := back["override"][0]
	if _, ok := master["conditions"]; !ok || master["default"] != true || master["enabled"] != false {
		t.Errorf("master rule JSON: %v", master)
	}
	mention := back["override"][4]
	if mention["rule_id"] != ".m.rule.is_user_mention" ||
		!strings.Contains(string(b), `"key":"content.m\\.mentions.user_ids","value":"@alice:example.org"`) {
		t.Errorf("is_user_mention JSON: %v", mention)
	}
}

func TestMasterRuleSilencesEverything(t *testing.T) {
	rs := Defaults(me)
	if err := rs.SetEnabled(Override, ".m.rule.master", true); err != nil {
		t.Fatal(err)
	}
	c := NewCompiler().Compile(rs, me)
	ev, _ := NewEvent([]byte(`{"type":"m.room.message","sender":"@bob:x","content":{"body":"x","m.mentions":{"user_ids":["` + me + `"]}}}`))
	if r := c.Evaluate(ev, me, &RoomContext{MemberCount: 2}); r == nil || r.RuleID != ".m.rule.master" || r.Notify {
		t.Fatalf("with the master rule on: %+v", r)
	}
}

func TestUserRules(t *testing.T) {
	rs := Defaults(me)
	mustPut := func(k Kind, id, body, before, after string) {
		t.Helper()
		nr, err := ParseNewRule(k, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.Put(k, id, nr, before, after); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(Room, "!muted:x", `{"actions":[]}`, "", "")
	mustPut(Sender, "@boss:x", `{"actions":["notify",{"set_tweak":"sound","value":"boss.wav"}]}`, "", "")
	mustPut(Content, "cake", `{"pattern":"cake","actions":["notify",{"set_tweak":"highlight"}]}`, "", "")
	mustPut(Override, "dont-mute-mentions", `{"conditions":[{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"`+me+`"}],"actions":["notify"]}`, "", "")
	c := NewCompiler().Compile(rs, me)
	eval := func(room, sender, content string) *Result {
		ev, err := NewEvent([]byte(`{"type":"m.room.message","room_id":"` + room + `","sender":"` + sender + `","content":` + content + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return c.Evaluate(ev, me, &RoomContext{MemberCount: 10})
	}
	if r := eval("!muted:x", "@bob:x", `{"body":"hi"}`); r == nil || r.RuleID != "!muted:x" || r.Notify {
		t.Errorf("muted room: %+v", r)
	}
	if r := eval("!muted:x", "@bob:x", `{"body":"hi","m.mentions":{"user_ids":["`+me+`"]}}`); r == nil || r.RuleID != "dont-mute-mentions" || !r.Notify {
		t.Errorf("mention in a muted room: %+v", r)
	}
	if r := eval("!other:x", "@boss:x", `{"body":"hi"}`); r == nil || r.RuleID != "@boss:x" || string(r.Tweaks["sound"]) != `"boss.wav"` {
		t.Errorf("sender rule: %+v", r)
	}
	if r := eval("!other:x", "@bob:x", `{"body":"Cake time!"}`); r == nil || r.RuleID != "cake" || !r.Highlight {
		t.Errorf("keyword: %+v", r)
	}
	if r := eval("!other:x", "@bob:x", `{"body":"cupcakes"}`); r == nil || r.RuleID != ".m.rule.message" {
		t.Errorf("keyword inside a word: %+v", r)
	}
	// A content rule is tried before room rules: the keyword wins in the
	// muted room.
	if r := eval("!muted:x", "@bob:x", `{"body":"cake"}`); r == nil || r.RuleID != "cake" {
		t.Errorf("keyword in a muted room: %+v", r)
	}
}

// Users on the defaults share one compiled ruleset, and the memo still
// gives each the answer about them.
func TestSharedCompiledRuleset(t *testing.T) {
	cp := NewCompiler()
	a := cp.Compile(Defaults("@a:x"), "@a:x")
	b := cp.Compile(Defaults("@b:x"), "@b:x")
	if a != b {
		t.Fatal("two users on the defaults got different compiled rulesets")
	}
	custom := Defaults("@c:x")
	_ = custom.SetEnabled(Underride, ".m.rule.message", false)
	if cp.Compile(custom, "@c:x") == a {
		t.Fatal("a changed ruleset shares the defaults' compiled form")
	}
	ev, _ := NewEvent([]byte(`{"type":"m.room.message","sender":"@z:x","content":{"body":"x","m.mentions":{"user_ids":["@b:x"]}}}`))
	room := &RoomContext{MemberCount: 10}
	for i := 0; i < 2; i++ { // the second round comes from the memo
		if r := a.Evaluate(ev, "@a:x", room); r == nil || r.Highlight {
			t.Errorf("round %d: @a:x got %+v", i, r)
		}
		if r := b.Evaluate(ev, "@b:x", room); r == nil || !r.Highlight {
			t.Errorf("round %d: @b:x got %+v", i, r)
		}
	}
}
