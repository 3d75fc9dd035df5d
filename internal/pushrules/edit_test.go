package pushrules

import (
	"errors"
	"strings"
	"testing"
)

func ruleIDs(rules []*Rule) string {
	var out []string
	for _, r := range rules {
		out = append(out, r.RuleID)
	}
	return strings.Join(out, " ")
}

func TestPutOrder(t *testing.T) {
	rs := Defaults(me)
	put := func(id, before, after string) error {
		nr, err := ParseNewRule(Override, []byte(`{"actions":["notify"],"conditions":[{"kind":"event_match","key":"type","pattern":"`+id+`"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return rs.Put(Override, id, nr, before, after)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := put(id, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	// New rules become the first user rule, after .m.rule.master.
	if got := ruleIDs(rs.Override[:4]); got != ".m.rule.master c b a" {
		t.Fatalf("after three puts: %s", got)
	}
	if err := put("d", "b", ""); err != nil {
		t.Fatal(err)
	}
	if err := put("e", "", "b"); err != nil {
		t.Fatal(err)
	}
	// before wins over after.
	if err := put("f", "c", "a"); err != nil {
		t.Fatal(err)
	}
	if got := ruleIDs(rs.Override[:7]); got != ".m.rule.master f c d b e a" {
		t.Fatalf("before/after: %s", got)
	}
	// Moving an existing rule keeps its enabled flag.
	_ = rs.SetEnabled(Override, "a", false)
	if err := put("a", "f", ""); err != nil {
		t.Fatal(err)
	}
	if got := ruleIDs(rs.Override[:7]); got != ".m.rule.master a f c d b e" || rs.Find(Override, "a").Enabled {
		t.Fatalf("moved: %s enabled=%v", got, rs.Find(Override, "a").Enabled)
	}
	// Replacing without before/after keeps the place.
	if err := put("c", "", ""); err != nil {
		t.Fatal(err)
	}
	if got := ruleIDs(rs.Override[:7]); got != ".m.rule.master a f c d b e" {
		t.Fatalf("replaced: %s", got)
	}
	// Relative to a default rule, to itself or to nothing: refused.
	for _, rel := range []string{".m.rule.message", ".m.rule.master", "c", "nope"} {
		if err := put("c", rel, ""); !errors.Is(err, ErrRelativeNotFound) {
			t.Errorf("before=%s: %v", rel, err)
		}
	}
}

func TestPutRefusals(t *testing.T) {
	rs := Defaults(me)
	nr := &NewRule{Actions: []Action{Notify()}}
	for _, tc := range []struct {
		kind Kind
		id   string
	}{
		{Override, ".m.rule.master"}, {Override, ".mine"}, {Override, "a/b"}, {Override, `a\b`}, {Override, ""},
		{Room, "not-a-room"}, {Sender, "not-a-user"},
	} {
		var ie *InvalidError
		if err := rs.Put(tc.kind, tc.id, nr, "", ""); !errors.As(err, &ie) || ie.Code != "M_INVALID_PARAM" {
			t.Errorf("put %s %q: %v", tc.kind, tc.id, err)
		}
	}
	for _, tc := range []struct {
		kind Kind
		body string
		code string
	}{
		{Override, `{}`, "M_MISSING_PARAM"},
		{Override, `[]`, "M_BAD_JSON"},
		{Override, `{"actions":"notify"}`, "M_BAD_JSON"},
		{Override, `{"actions":["explode"]}`, "M_INVALID_PARAM"},
		{Override, `{"actions":[5]}`, "M_INVALID_PARAM"},
		{Override, `{"actions":[],"conditions":[{"kind":"event_match"}]}`, "M_INVALID_PARAM"},
		{Content, `{"actions":[]}`, "M_MISSING_PARAM"},
		{Content, `{"actions":[],"pattern":5}`, "M_MISSING_PARAM"},
	} {
		var ie *InvalidError
		if _, err := ParseNewRule(tc.kind, []byte(tc.body)); !errors.As(err, &ie) || ie.Code != tc.code {
			t.Errorf("%s %s: %v, want %s", tc.kind, tc.body, err, tc.code)
		}
	}
	// Historical actions are dropped.
	got, err := ParseNewRule(Override, []byte(`{"actions":["dont_notify","coalesce"]}`))
	if err != nil || len(got.Actions) != 0 {
		t.Errorf("historical actions: %+v %v", got, err)
	}
}

func TestDeleteEnableActions(t *testing.T) {
	rs := Defaults(me)
	if err := rs.Delete(Override, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
	var ie *InvalidError
	if err := rs.Delete(Underride, ".m.rule.message"); !errors.As(err, &ie) {
		t.Errorf("delete default: %v", err)
	}
	if err := rs.SetEnabled(Underride, ".m.rule.message", false); err != nil || rs.Find(Underride, ".m.rule.message").Enabled {
		t.Errorf("disable default: %v", err)
	}
	if err := rs.SetEnabled(Content, ".m.rule.message", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("wrong kind: %v", err)
	}
	if err := rs.SetActions(Underride, ".m.rule.message", []Action{Notify(), SetTweak("sound", "ding")}); err != nil {
		t.Fatal(err)
	}
	_ = rs.Put(Room, "!r:x", &NewRule{Actions: []Action{}}, "", "")
	if err := rs.Delete(Room, "!r:x"); err != nil || rs.Find(Room, "!r:x") != nil {
		t.Errorf("delete user rule: %v", err)
	}
}

// What is stored comes back: user rules in order, the user's choices for
// default rules; not a default the server no longer has.
func TestLoadRoundTrip(t *testing.T) {
	rs := Defaults(me)
	_ = rs.Put(Content, "k1", &NewRule{Pattern: ptr("one"), Actions: []Action{Notify()}}, "", "")
	_ = rs.Put(Content, "k2", &NewRule{Pattern: ptr("two"), Actions: []Action{Notify()}}, "", "k1")
	_ = rs.Put(Override, "o1", &NewRule{Actions: []Action{}}, "", "")
	_ = rs.SetEnabled(Override, ".m.rule.master", true)
	_ = rs.SetActions(Underride, ".m.rule.message", []Action{Notify(), SetTweak("sound", "x")})
	stored := rs.AccountData()
	// A default rule of an older server, and a malformed rule, in the
	// stored form.
	stored = []byte(strings.Replace(string(stored), `"override":[`,
		`"override":[{"rule_id":".m.rule.gone","default":true,"enabled":true,"actions":["notify"]},{"rule_id":5},`, 1))

	back := Load(stored, me)
	if got := ruleIDs(back.Content); got != "k1 k2" {
		t.Errorf("content: %s", got)
	}
	if got := ruleIDs(back.Override[:3]); got != ".m.rule.master o1 .m.rule.suppress_notices" {
		t.Errorf("override: %s", got)
	}
	if back.Find(Override, ".m.rule.gone") != nil {
		t.Error("a default rule this server does not have came back")
	}
	if !back.Override[0].Enabled {
		t.Error("master's enabled flag lost")
	}
	if m := back.Find(Underride, ".m.rule.message"); len(m.Actions) != 2 || m.Actions[1].Tweak != "sound" {
		t.Errorf("message actions: %+v", m.Actions)
	}
	if string(Load(nil, me).AccountData()) != string(Defaults(me).AccountData()) {
		t.Error("nothing stored is not the defaults")
	}
	if string(Load([]byte(`{"global":"x"}`), me).AccountData()) != string(Defaults(me).AccountData()) {
		t.Error("malformed content is not the defaults")
	}
}

func ptr(s string) *string { return &s }
