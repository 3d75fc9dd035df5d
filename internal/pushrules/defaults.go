package pushrules

import "encoding/json"

// The server-default rules (push module, "Predefined Rules"), as of spec
// v1.17: the legacy rules that looked for mentions in content.body
// (.m.rule.contains_display_name, .m.rule.contains_user_name,
// .m.rule.roomnotif) were removed from the spec then, and intentional
// mentions (m.mentions) replace them. The contains_display_name condition
// still works in rules users write.

// Defaults returns the server-default ruleset of userID, every rule
// enabled as the spec defines it. Each call returns new values.
func Defaults(userID string) *Ruleset {
	sound := func(v string) Action { return SetTweak("sound", v) }
	highlight := SetTweak("highlight", nil)
	return &Ruleset{
		Override: []*Rule{
			defaultRule(".m.rule.master", false, nil),
			defaultRule(".m.rule.suppress_notices", true, nil,
				match("content.msgtype", "m.notice")),
			defaultRule(".m.rule.invite_for_me", true, []Action{Notify(), sound("default")},
				match("type", "m.room.member"), match("content.membership", "invite"), match("state_key", userID)),
			defaultRule(".m.rule.member_event", true, nil,
				match("type", "m.room.member")),
			defaultRule(".m.rule.is_user_mention", true, []Action{Notify(), sound("default"), highlight},
				propertyContains(`content.m\.mentions.user_ids`, userID)),
			defaultRule(".m.rule.is_room_mention", true, []Action{Notify(), highlight},
				propertyIs(`content.m\.mentions.room`, true),
				Condition{Kind: CondSenderNotificationPerm, Key: "room"}),
			defaultRule(".m.rule.tombstone", true, []Action{Notify(), highlight},
				match("type", "m.room.tombstone"), match("state_key", "")),
			defaultRule(".m.rule.reaction", true, nil,
				match("type", "m.reaction")),
			defaultRule(".m.rule.room.server_acl", true, nil,
				match("type", "m.room.server_acl"), match("state_key", "")),
			defaultRule(".m.rule.suppress_edits", true, nil,
				propertyIs(`content.m\.relates_to.rel_type`, "m.replace")),
		},
		Content: []*Rule{},
		Room:    []*Rule{},
		Sender:  []*Rule{},
		Underride: []*Rule{
			defaultRule(".m.rule.call", true, []Action{Notify(), sound("ring")},
				match("type", "m.call.invite")),
			defaultRule(".m.rule.encrypted_room_one_to_one", true, []Action{Notify(), sound("default")},
				Condition{Kind: CondRoomMemberCount, Is: "2"}, match("type", "m.room.encrypted")),
			defaultRule(".m.rule.room_one_to_one", true, []Action{Notify(), sound("default")},
				Condition{Kind: CondRoomMemberCount, Is: "2"}, match("type", "m.room.message")),
			defaultRule(".m.rule.message", true, []Action{Notify()},
				match("type", "m.room.message")),
			defaultRule(".m.rule.encrypted", true, []Action{Notify()},
				match("type", "m.room.encrypted")),
		},
	}
}

func defaultRule(id string, enabled bool, actions []Action, conds ...Condition) *Rule {
	if actions == nil {
		actions = []Action{}
	}
	if conds == nil {
		conds = []Condition{}
	}
	return &Rule{RuleID: id, Default: true, Enabled: enabled, Conditions: conds, Actions: actions}
}

func match(key, pattern string) Condition {
	return Condition{Kind: CondEventMatch, Key: key, Pattern: &pattern}
}

func propertyIs(key string, value any) Condition {
	c := Condition{Kind: CondEventPropertyIs, Key: key}
	c.Value = mustJSON(value)
	return c
}

func propertyContains(key string, value any) Condition {
	c := Condition{Kind: CondEventPropertyContains, Key: key}
	c.Value = mustJSON(value)
	return c
}

// IsServerDefault reports whether ruleID is reserved for server-default
// rules (it starts with a dot).
func IsServerDefault(ruleID string) bool { return len(ruleID) > 0 && ruleID[0] == '.' }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
