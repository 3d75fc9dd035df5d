package pushrules

// The edits of the /pushrules API (pushrules.yaml) on a ruleset. Errors
// say which status the API answers: ErrNotFound (404 M_NOT_FOUND),
// *InvalidError (400 M_INVALID_PARAM, or M_MISSING_PARAM / M_BAD_JSON for
// a body of the wrong shape) and ErrRelativeNotFound (400 M_UNKNOWN, the
// spec's example for a before/after rule that does not exist).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotFound: no rule of that kind has that ID.
var ErrNotFound = errors.New("push rule not found")

// ErrRelativeNotFound: the before or after rule of a PUT is not a user
// rule of the same kind.
var ErrRelativeNotFound = errors.New("before/after rule not found")

// InvalidError is a request the spec refuses with a 400.
type InvalidError struct {
	// Code is M_INVALID_PARAM, M_MISSING_PARAM or M_BAD_JSON.
	Code string
	Msg  string
}

func (e *InvalidError) Error() string { return e.Code + ": " + e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Code: "M_INVALID_PARAM", Msg: fmt.Sprintf(format, args...)}
}

// NewRule is the body of PUT /pushrules/global/{kind}/{ruleId}, parsed.
type NewRule struct {
	Actions    []Action
	Conditions []Condition // override and underride
	Pattern    *string     // content
}

// ParseNewRule parses and checks the body of a PUT for a rule of kind k.
func ParseNewRule(k Kind, body []byte) (*NewRule, error) {
	var in struct {
		Actions    *[]json.RawMessage `json:"actions"`
		Conditions *[]json.RawMessage `json:"conditions"`
		Pattern    *json.RawMessage   `json:"pattern"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &InvalidError{Code: "M_BAD_JSON", Msg: "the body must be an object with actions"}
	}
	if in.Actions == nil {
		return nil, &InvalidError{Code: "M_MISSING_PARAM", Msg: "actions is required"}
	}
	actions, err := ParseActions(*in.Actions)
	if err != nil {
		return nil, err
	}
	nr := &NewRule{Actions: actions}
	switch k {
	case Override, Underride:
		nr.Conditions = []Condition{}
		if in.Conditions != nil {
			for i, raw := range *in.Conditions {
				c, err := ParseCondition(raw)
				if err != nil {
					return nil, invalid("conditions[%d]: %v", i, err)
				}
				nr.Conditions = append(nr.Conditions, c)
			}
		}
	case Content:
		var p string
		if in.Pattern == nil || json.Unmarshal(*in.Pattern, &p) != nil {
			return nil, &InvalidError{Code: "M_MISSING_PARAM", Msg: "content rules need a pattern (a string)"}
		}
		nr.Pattern = &p
	}
	return nr, nil
}

// ParseActions parses an actions array: "notify", set_tweak objects, and
// the historical dont_notify and coalesce, which are dropped.
func ParseActions(raws []json.RawMessage) ([]Action, error) {
	out := []Action{}
	for i, raw := range raws {
		var a Action
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, invalid("actions[%d]: %v", i, err)
		}
		switch {
		case a.historical():
			continue
		case !a.known():
			return nil, invalid("actions[%d]: unknown action %s", i, bytes.TrimSpace(raw))
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseCondition parses one condition. Kinds the spec defines must have
// their parameters, of the right types; other kinds are accepted as they
// are (the spec says they never match).
func ParseCondition(raw []byte) (Condition, error) {
	var c Condition
	if err := json.Unmarshal(raw, &c); err != nil {
		return Condition{}, errors.New("a condition is an object with a string kind")
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	str := func(name string) bool {
		var s string
		v, ok := fields[name]
		return ok && json.Unmarshal(v, &s) == nil
	}
	switch c.Kind {
	case "":
		return Condition{}, errors.New("a condition needs a kind")
	case CondEventMatch:
		if !str("key") || !str("pattern") {
			return Condition{}, errors.New("event_match needs a key and a pattern, both strings")
		}
	case CondEventPropertyIs, CondEventPropertyContains:
		if !str("key") {
			return Condition{}, fmt.Errorf("%s needs a key (a string)", c.Kind)
		}
		if _, ok := fields["value"]; !ok {
			return Condition{}, fmt.Errorf("%s needs a value", c.Kind)
		}
		if _, ok := parseScalar(c.Value); !ok {
			return Condition{}, fmt.Errorf("%s: value must be a string, an integer within ±(2^53-1), a boolean or null", c.Kind)
		}
	case CondRoomMemberCount:
		if !str("is") {
			return Condition{}, errors.New("room_member_count needs is (a string)")
		}
		if _, _, ok := parseMemberCount(c.Is); !ok {
			return Condition{}, fmt.Errorf("room_member_count: %q is not a number with an optional ==, <, >, <= or >= before it", c.Is)
		}
	case CondSenderNotificationPerm:
		if !str("key") {
			return Condition{}, errors.New("sender_notification_permission needs a key (a string)")
		}
	}
	return c, nil
}

// parseMemberCount parses room_member_count's "is": an optional operator
// and a decimal integer.
func parseMemberCount(is string) (op string, n int64, ok bool) {
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(is, p) {
			op, is = p, is[len(p):]
			break
		}
	}
	if op == "" {
		op = "=="
	}
	if is == "" || strings.TrimLeft(is, "0123456789") != "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(is, 10, 64)
	return op, n, err == nil
}

// CheckUserRuleID checks the rule ID of a PUT: not reserved for the server
// (a leading dot), no slashes, and for room and sender rules the ID of a
// room or of a user.
func CheckUserRuleID(k Kind, ruleID string) error {
	switch {
	case ruleID == "":
		return invalid("the rule ID is empty")
	case IsServerDefault(ruleID):
		return invalid("rule IDs starting with '.' are reserved for server-default rules")
	case strings.ContainsAny(ruleID, `/\`):
		return invalid("rule IDs cannot contain '/' or '\\'")
	case k == Room && !strings.HasPrefix(ruleID, "!"):
		return invalid("the rule ID of a room rule is the room's ID")
	case k == Sender && !strings.HasPrefix(ruleID, "@"):
		return invalid("the rule ID of a sender rule is the user's ID")
	}
	return nil
}

// Put adds or replaces the user rule ruleID of kind k. A new rule is
// enabled; a replaced one keeps its enabled flag. before (or else after),
// when not "", names the user rule of the same kind to place it just
// before (after); without them a new rule becomes the first user rule of
// its kind and a replaced one keeps its place.
func (rs *Ruleset) Put(k Kind, ruleID string, nr *NewRule, before, after string) error {
	if err := CheckUserRuleID(k, ruleID); err != nil {
		return err
	}
	p := rs.list(k)
	if p == nil {
		return invalid("unknown rule kind %q", k)
	}
	rule := &Rule{RuleID: ruleID, Enabled: true, Actions: nr.Actions, Pattern: nr.Pattern}
	if k == Override || k == Underride {
		rule.Conditions = nr.Conditions
		if rule.Conditions == nil {
			rule.Conditions = []Condition{}
		}
	}
	relative := before
	if relative == "" {
		relative = after
	}
	if relative != "" && (IsServerDefault(relative) || relative == ruleID || rs.Find(k, relative) == nil) {
		return fmt.Errorf("%w: %s", ErrRelativeNotFound, relative)
	}
	rules := *p
	if i := indexOf(rules, ruleID); i >= 0 {
		rule.Enabled = rules[i].Enabled
		if relative == "" {
			rules[i] = rule
			return nil
		}
		rules = append(rules[:i], rules[i+1:]...)
	}
	var at int
	switch {
	case before != "":
		at = indexOf(rules, before)
	case after != "":
		at = indexOf(rules, after) + 1
	default:
		// The first user rule of the kind: after .m.rule.master.
		for at < len(rules) && rules[at].RuleID == ".m.rule.master" {
			at++
		}
	}
	rules = append(rules, nil)
	copy(rules[at+1:], rules[at:])
	rules[at] = rule
	*p = rules
	return nil
}

// Delete removes the user rule ruleID of kind k. Server-default rules
// cannot be deleted (disable them instead).
func (rs *Ruleset) Delete(k Kind, ruleID string) error {
	p := rs.list(k)
	if p == nil {
		return ErrNotFound
	}
	i := indexOf(*p, ruleID)
	if i < 0 {
		return ErrNotFound
	}
	if (*p)[i].Default {
		return invalid("server-default rules cannot be deleted; disable them instead")
	}
	*p = append((*p)[:i], (*p)[i+1:]...)
	return nil
}

// SetEnabled enables or disables the rule ruleID of kind k (a default rule
// too).
func (rs *Ruleset) SetEnabled(k Kind, ruleID string, enabled bool) error {
	r := rs.Find(k, ruleID)
	if r == nil {
		return ErrNotFound
	}
	r.Enabled = enabled
	return nil
}

// SetActions replaces the actions of the rule ruleID of kind k (a default
// rule too).
func (rs *Ruleset) SetActions(k Kind, ruleID string, actions []Action) error {
	r := rs.Find(k, ruleID)
	if r == nil {
		return ErrNotFound
	}
	r.Actions = actions
	return nil
}

func indexOf(rules []*Rule, id string) int {
	for i, r := range rules {
		if r.RuleID == id {
			return i
		}
	}
	return -1
}
