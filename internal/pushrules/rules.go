package pushrules

// The JSON shapes of push rules (definitions/push_ruleset.yaml,
// push_rule.yaml, push_condition.yaml), as the /pushrules API serves them
// and the m.push_rules account data stores them.

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Kind is a kind of rule, which is also its priority class.
type Kind string

// The kinds, in the order they are checked.
const (
	Override  Kind = "override"
	Content   Kind = "content"
	Room      Kind = "room"
	Sender    Kind = "sender"
	Underride Kind = "underride"
)

// Kinds lists the kinds in the order they are checked.
var Kinds = []Kind{Override, Content, Room, Sender, Underride}

// ValidKind reports whether k is one of the five kinds.
func ValidKind(k string) bool {
	switch Kind(k) {
	case Override, Content, Room, Sender, Underride:
		return true
	}
	return false
}

// Ruleset is the "global" ruleset: every rule of a user, by kind, in
// priority order within each kind.
type Ruleset struct {
	Override  []*Rule `json:"override"`
	Content   []*Rule `json:"content"`
	Room      []*Rule `json:"room"`
	Sender    []*Rule `json:"sender"`
	Underride []*Rule `json:"underride"`
}

// Rules returns the rules of kind k (nil for an unknown kind).
func (rs *Ruleset) Rules(k Kind) []*Rule {
	if p := rs.list(k); p != nil {
		return *p
	}
	return nil
}

func (rs *Ruleset) list(k Kind) *[]*Rule {
	switch k {
	case Override:
		return &rs.Override
	case Content:
		return &rs.Content
	case Room:
		return &rs.Room
	case Sender:
		return &rs.Sender
	case Underride:
		return &rs.Underride
	}
	return nil
}

// Find returns the rule of kind k with ruleID, or nil.
func (rs *Ruleset) Find(k Kind, ruleID string) *Rule {
	for _, r := range rs.Rules(k) {
		if r.RuleID == ruleID {
			return r
		}
	}
	return nil
}

// MarshalJSON writes every kind, empty ones as [] (clients index them).
func (rs *Ruleset) MarshalJSON() ([]byte, error) {
	type plain Ruleset
	c := plain(*rs)
	for _, k := range Kinds {
		p := (*Ruleset)(&c).list(k)
		if *p == nil {
			*p = []*Rule{}
		}
	}
	return json.Marshal(c)
}

// AccountData is the content of the m.push_rules account data event.
func (rs *Ruleset) AccountData() []byte {
	b, _ := json.Marshal(struct {
		Global *Ruleset `json:"global"`
	}{rs})
	return b
}

// Rule is one push rule.
type Rule struct {
	RuleID  string `json:"rule_id"`
	Default bool   `json:"default"`
	Enabled bool   `json:"enabled"`
	// Conditions of override and underride rules; nil for the other
	// kinds, whose conditions are implied (written as [] when empty but
	// not nil).
	Conditions []Condition `json:"-"`
	// Pattern of content rules.
	Pattern *string  `json:"pattern,omitempty"`
	Actions []Action `json:"actions"`
}

// MarshalJSON writes conditions whenever the rule has a (possibly empty)
// list of them.
func (r *Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	out := struct {
		*plain
		Conditions *[]Condition `json:"conditions,omitempty"`
		Actions    []Action     `json:"actions"`
	}{plain: (*plain)(r), Actions: r.Actions}
	if r.Conditions != nil {
		out.Conditions = &r.Conditions
	}
	if out.Actions == nil {
		out.Actions = []Action{}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a rule, telling absent conditions from [].
func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	p := plain{}
	in := struct {
		*plain
		Conditions *[]Condition `json:"conditions"`
	}{plain: &p}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Rule(p)
	if in.Conditions != nil {
		r.Conditions = *in.Conditions
		if r.Conditions == nil {
			r.Conditions = []Condition{}
		}
	}
	return nil
}

// clone returns a deep enough copy of r for editing.
func (r *Rule) clone() *Rule {
	c := *r
	if r.Conditions != nil {
		c.Conditions = append([]Condition{}, r.Conditions...)
	}
	c.Actions = append([]Action(nil), r.Actions...)
	if r.Pattern != nil {
		p := *r.Pattern
		c.Pattern = &p
	}
	return &c
}

// Condition is one condition of an override or underride rule. Conditions
// of kinds this package does not know keep their JSON as it came, so that
// they survive a round trip (they never match).
type Condition struct {
	Kind    string          `json:"kind"`
	Key     string          `json:"key,omitempty"`
	Pattern *string         `json:"pattern,omitempty"` // "" is a valid pattern
	Is      string          `json:"is,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"` // null is a valid value
	raw     json.RawMessage
}

// The condition kinds of the spec.
const (
	CondEventMatch             = "event_match"
	CondEventPropertyIs        = "event_property_is"
	CondEventPropertyContains  = "event_property_contains"
	CondContainsDisplayName    = "contains_display_name"
	CondRoomMemberCount        = "room_member_count"
	CondSenderNotificationPerm = "sender_notification_permission"
)

// MarshalJSON writes the condition as it came, or from its fields.
func (c Condition) MarshalJSON() ([]byte, error) {
	if c.raw != nil {
		return c.raw, nil
	}
	type plain Condition
	return json.Marshal(plain(c))
}

// UnmarshalJSON reads a condition object, keeping its JSON.
func (c *Condition) UnmarshalJSON(b []byte) error {
	type plain Condition
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = Condition(p)
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	c.raw = buf.Bytes()
	return nil
}

// Action is one action of a rule: "notify", a set_tweak, or an action this
// package does not know, kept as its JSON.
type Action struct {
	// Name is "notify", "set_tweak", or "" for an unknown action.
	Name string
	// Tweak and Value are the set_tweak's; Value is nil when absent.
	Tweak string
	Value json.RawMessage
	raw   json.RawMessage
}

// The actions of the spec.
const (
	ActionNotify   = "notify"
	ActionSetTweak = "set_tweak"
)

// Notify is the "notify" action.
func Notify() Action { return Action{Name: ActionNotify} }

// SetTweak is a set_tweak action; value nil leaves "value" out.
func SetTweak(tweak string, value any) Action {
	a := Action{Name: ActionSetTweak, Tweak: tweak}
	if value != nil {
		a.Value, _ = json.Marshal(value)
	}
	return a
}

// MarshalJSON writes the action in the spec's form.
func (a Action) MarshalJSON() ([]byte, error) {
	switch {
	case a.raw != nil:
		return a.raw, nil
	case a.Name == ActionSetTweak:
		out := map[string]any{"set_tweak": a.Tweak}
		if a.Value != nil {
			out["value"] = a.Value
		}
		return json.Marshal(out)
	}
	return json.Marshal(a.Name)
}

// UnmarshalJSON reads a string action or a set_tweak object; anything
// else is kept as an unknown action.
func (a *Action) UnmarshalJSON(b []byte) error {
	*a = Action{}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == ActionNotify {
			a.Name = s
		} else {
			a.raw = append(json.RawMessage(nil), b...)
		}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("an action is a string or an object")
	}
	if t, ok := obj["set_tweak"]; ok {
		if err := json.Unmarshal(t, &a.Tweak); err == nil {
			a.Name = ActionSetTweak
			if v, ok := obj["value"]; ok {
				a.Value = append(json.RawMessage(nil), v...)
			}
			return nil
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	a.raw = buf.Bytes()
	return nil
}

// historical reports whether a is dont_notify or coalesce, which the spec
// says to ignore (strip).
func (a Action) historical() bool {
	return a.raw != nil && (bytes.Equal(a.raw, []byte(`"dont_notify"`)) || bytes.Equal(a.raw, []byte(`"coalesce"`)))
}

// known reports whether a is an action the spec defines.
func (a Action) known() bool { return a.Name != "" }

// stripHistorical drops dont_notify and coalesce.
func stripHistorical(as []Action) []Action {
	out := as[:0:0]
	for _, a := range as {
		if !a.historical() {
			out = append(out, a)
		}
	}
	if out == nil {
		out = []Action{}
	}
	return out
}
