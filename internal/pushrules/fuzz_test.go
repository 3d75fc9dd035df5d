package pushrules

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceGlob matches with a regular expression built from the glob, the
// obvious implementation, to check the fast matcher against.
func referenceGlob(pattern, value string, wordBoundary bool) bool {
	p, v := strings.ToLower(pattern), strings.ToLower(value)
	var re string
	if wordBoundary {
		re = `(?s)(?:^|\W)` + globRegexp(p) + `(?:\W|$)`
	} else {
		re = `(?s)^` + globRegexp(p) + `$`
	}
	return regexp.MustCompile(re).MatchString(v)
}

func TestGlobAgainstReference(t *testing.T) {
	cases := []struct{ pattern, value string }{
		{"lunc?*", "Lunch plans"}, {"lunc?*", "lunc"}, {"*", ""}, {"", ""}, {"", "x"},
		{"a*b*c", "aXbYc"}, {"a*b*c", "abcb"}, {"*a", "ba"}, {"a*", "ab"}, {"?", "é"}, {"??", "é"},
		{"*x*", "axb"}, {"a?c", "abc"}, {"a?c", "ac"}, {"ex*ple", "An exciting triple-whammy"},
		{"cake", "cupcake"}, {"cake", "cake!"}, {"@room", "hi @room"}, {"@room", "x@room"}, {"", " "},
		{"Ä*", "äb"}, {"*é", "café"}, {"a**b", "ab"},
	}
	for _, tc := range cases {
		for _, wb := range []bool{false, true} {
			want := referenceGlob(tc.pattern, tc.value, wb)
			if got := CompileGlob(tc.pattern, wb).Match(strings.ToLower(tc.value)); got != want {
				t.Errorf("glob %q on %q (word boundary %v): %v, reference %v", tc.pattern, tc.value, wb, got, want)
			}
		}
	}
}

func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"lunc?*", "Lunch plans"}, {"ex*ple", "An example event."}, {"a*b?c", "aXXbYc"}, {"*", ""}, {"é?", "éa"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if len(pattern) > 64 || len(value) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(value) {
			return
		}
		for _, wb := range []bool{false, true} {
			want := referenceGlob(pattern, value, wb)
			if got := CompileGlob(pattern, wb).Match(strings.ToLower(value)); got != want {
				t.Fatalf("glob %q on %q (word boundary %v): %v, reference %v", pattern, value, wb, got, want)
			}
		}
	})
}

// Any condition, parsed or not, compiles and evaluates without panicking,
// and one the parser accepts survives a JSON round trip.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		`{"kind":"event_match","key":"content.body","pattern":"ex*ple"}`,
		`{"kind":"event_property_is","key":"content.m\\.federate","value":true}`,
		`{"kind":"event_property_contains","key":"content.alt_aliases","value":"#a:b"}`,
		`{"kind":"room_member_count","is":"<=10"}`,
		`{"kind":"sender_notification_permission","key":"room"}`,
		`{"kind":"contains_display_name"}`,
		`{"kind":"unknown","x":[1,{"y":null}]}`,
	} {
		f.Add(s, `{"type":"m.room.message","sender":"@b:x","content":{"body":"An example","alt_aliases":["#a:b"],"m.federate":true}}`)
	}
	f.Fuzz(func(t *testing.T, cond, event string) {
		c, err := ParseCondition([]byte(cond))
		var conds []Condition
		if err == nil {
			b, merr := json.Marshal(c)
			if merr != nil {
				t.Fatalf("marshal a parsed condition: %v", merr)
			}
			back, err := ParseCondition(b)
			if err != nil {
				t.Fatalf("a parsed condition %s does not parse again as %s: %v", cond, b, err)
			}
			conds = []Condition{back}
		} else {
			// Unchecked conditions, as a stored ruleset could hold them.
			var raw Condition
			if json.Unmarshal([]byte(cond), &raw) != nil {
				return
			}
			conds = []Condition{raw}
		}
		rs := &Ruleset{Override: []*Rule{{RuleID: "r", Enabled: true, Conditions: conds, Actions: []Action{Notify()}}}}
		compiled := NewCompiler().Compile(rs, "@me:x")
		ev, err := NewEvent([]byte(event))
		if err != nil {
			return
		}
		room := &RoomContext{MemberCount: 3, DisplayName: func(string) string { return "Me" }}
		_ = compiled.Evaluate(ev, "@me:x", room)
	})
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{"content.body", `content.m\.relates_to.rel_type`, `content.m\\foo`, `a\x.b`, `.`, `\`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		segs := splitPath(path)
		// The canonical form names the same properties, and is its own
		// canonical form.
		c := canonicalPath(path)
		if got := splitPath(c); strings.Join(got, "\x00") != strings.Join(segs, "\x00") {
			t.Fatalf("%q → %q: segments %q, want %q", path, c, got, segs)
		}
		if canonicalPath(c) != c {
			t.Fatalf("canonical form of %q is not stable: %q", path, c)
		}
	})
}

// The flattened event finds properties by the paths rules use.
func TestEventPaths(t *testing.T) {
	ev, err := NewEvent([]byte(`{"content":{"m.relates_to":{"rel_type":"m.thread"},"a\\b":"x","":{"y":"z"},"list":[1,"s",{"o":1}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		`content.m\.relates_to.rel_type`: "m.thread",
		`content.a\\b`:                   "x",
		`content..y`:                     "z",
	} {
		s, ok := ev.scalars[canonicalPath(path)]
		if !ok || s.str != want {
			t.Errorf("%s: %+v %v", path, s, ok)
		}
	}
	if n := len(ev.arrays["content.list"]); n != 2 {
		t.Errorf("array keeps %d scalars, want 2", n)
	}
	if _, err := NewEvent([]byte(`[1]`)); err == nil {
		t.Error("an array parsed as an event")
	}
	if _, err := NewEvent([]byte(`{"a":`)); err == nil {
		t.Error("bad JSON parsed as an event")
	}
}
