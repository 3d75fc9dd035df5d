package pushrules

import (
	"encoding/json"
	"strings"
)

// A user's rules are stored as the whole ruleset (the m.push_rules account
// data, which clients read), but only part of it is the user's: the rules
// they wrote, and the enabled flag and actions of each server-default rule.
// Load rebuilds the effective ruleset from that part and the server
// defaults of this version, so a default added or changed by an upgrade
// reaches every user.
//
// Order (push module, "Predefined Rules"): user rules come before the
// server-default rules of their kind, except .m.rule.master, which comes
// before everything.

// Load returns userID's effective ruleset from the stored m.push_rules
// content (nil or malformed: the defaults). Malformed rules in it are
// skipped.
func Load(content []byte, userID string) *Ruleset {
	rs := Defaults(userID)
	if len(content) == 0 {
		return rs
	}
	var stored struct {
		Global map[Kind][]json.RawMessage `json:"global"`
	}
	if err := json.Unmarshal(content, &stored); err != nil || stored.Global == nil {
		return rs
	}
	for _, k := range Kinds {
		defaults := rs.Rules(k)
		var user []*Rule
		for _, raw := range stored.Global[k] {
			var r Rule
			if json.Unmarshal(raw, &r) != nil || r.RuleID == "" {
				continue
			}
			if IsServerDefault(r.RuleID) {
				// The user's choices for a default rule: enabled and
				// actions. Its definition is the server's.
				for _, d := range defaults {
					if d.RuleID == r.RuleID && r.Actions != nil {
						d.Enabled = r.Enabled
						d.Actions = stripHistorical(r.Actions)
					}
				}
				continue
			}
			if !userRuleValid(k, &r) || containsRule(user, r.RuleID) {
				continue
			}
			r.Default = false
			r.Actions = stripHistorical(r.Actions)
			switch k {
			case Override, Underride:
				if r.Conditions == nil {
					r.Conditions = []Condition{}
				}
			default:
				r.Conditions = nil
			}
			if k != Content {
				r.Pattern = nil
			}
			user = append(user, &r)
		}
		*rs.list(k) = insertUserRules(k, defaults, user)
	}
	return rs
}

// insertUserRules puts a kind's user rules before its default rules (after
// .m.rule.master in override).
func insertUserRules(k Kind, defaults, user []*Rule) []*Rule {
	out := make([]*Rule, 0, len(defaults)+len(user))
	at := 0
	if k == Override && len(defaults) > 0 && defaults[0].RuleID == ".m.rule.master" {
		out = append(out, defaults[0])
		at = 1
	}
	out = append(out, user...)
	return append(out, defaults[at:]...)
}

func containsRule(rules []*Rule, id string) bool {
	for _, r := range rules {
		if r.RuleID == id {
			return true
		}
	}
	return false
}

// userRuleValid checks what a kind requires of a rule: content rules a
// pattern; room and sender rules an ID of a room or user as their rule ID.
func userRuleValid(k Kind, r *Rule) bool {
	if strings.ContainsAny(r.RuleID, `/\`) {
		return false
	}
	switch k {
	case Content:
		return r.Pattern != nil
	case Room:
		return strings.HasPrefix(r.RuleID, "!")
	case Sender:
		return strings.HasPrefix(r.RuleID, "@")
	}
	return true
}
