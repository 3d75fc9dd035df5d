package auth

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// checkMember implements the rules for m.room.member events (rule 5 of
// versions 1 to 5, rule 4 of versions 6 to 11, rule 5 of version 12).
func (x *checkCtx) checkMember() error {
	const rule = "m.room.member"
	ev := x.ev
	sk := ev.StateKey()
	if sk == nil {
		return refuse(rule, "event has no state_key")
	}
	content := ev.Content()
	membership := ev.Membership()
	if membership == "" {
		m := gjson.GetBytes(content, "membership")
		switch {
		case !m.Exists():
			return refuse(rule, "content has no membership")
		case m.Type != gjson.String:
			return refuse(rule, "content.membership is not a string")
		}
	}
	// Versions 8+: a join naming an authorising user must carry the
	// signature of that user's server. The spec words this for any
	// membership; Synapse and pdu.RequiredSigners apply it to joins, the only
	// membership the key has a meaning for, and refusing a kick Synapse
	// accepts would split the room. Signatures were verified on receipt;
	// here only their presence is looked at.
	if x.ver.RestrictedJoins && membership == membershipJoin {
		if a := gjson.GetBytes(content, keyAuthorisingUser); a.Exists() {
			if a.Type != gjson.String || !looseUserID(a.Str) {
				return refuse(rule, "content.join_authorised_via_users_server is not a user ID")
			}
			server, _ := domainOf(a.Str)
			if len(ev.Signatures()[server]) == 0 {
				return refuse(rule, "the event is not signed by the server of join_authorised_via_users_server")
			}
		}
	}
	target := *sk
	switch membership {
	case membershipJoin:
		return x.checkJoin(target)
	case membershipInvite:
		return x.checkInvite(target)
	case membershipLeave:
		return x.checkLeave(target)
	case membershipBan:
		return x.checkBan(target)
	case membershipKnock:
		if x.ver.Knocking {
			return x.checkKnock(target)
		}
	}
	return refuse(rule, "unknown membership "+strconv.Quote(membership))
}

// joinRule returns the room's join rule. A room without m.room.join_rules,
// or whose event has no join_rule, is treated as "invite", as Synapse does;
// a join_rule that is not a string matches no rule.
func (x *checkCtx) joinRule() string {
	ev := x.get(typeJoinRules, "")
	if ev == nil {
		return joinRuleInvite
	}
	jr := gjson.GetBytes(ev.Content(), "join_rule")
	if !jr.Exists() {
		return joinRuleInvite
	}
	if jr.Type != gjson.String {
		return ""
	}
	return jr.Str
}

// restrictedRule reports whether the join rule is one of the restricted
// ones the room version knows.
func (x *checkCtx) restrictedRule(jr string) bool {
	return (x.ver.RestrictedJoins && jr == joinRuleRestricted) ||
		(x.ver.KnockRestricted && jr == joinRuleKnockRestrict)
}

func (x *checkCtx) checkJoin(target string) error {
	const rule = "m.room.member join"
	ev := x.ev
	// The creator's own first join, straight after the create event.
	if prev := ev.PrevEventIDs(); len(prev) == 1 && prev[0] == x.create.ev.EventID() &&
		x.create.creator != "" && target == x.create.creator {
		return nil
	}
	if ev.Sender() != target {
		return refuse(rule, "the sender is not the user joining")
	}
	cur := x.membership(target)
	if cur == membershipBan {
		return refuse(rule, "the sender is banned")
	}
	jr := x.joinRule()
	switch {
	case jr == joinRuleInvite || (x.ver.Knocking && jr == joinRuleKnock):
		if cur == membershipInvite || cur == membershipJoin {
			return nil
		}
		return refuse(rule, "the join rule is "+jr+" and the sender is not invited")
	case x.restrictedRule(jr):
		if cur == membershipInvite || cur == membershipJoin {
			return nil
		}
		a := gjson.GetBytes(ev.Content(), keyAuthorisingUser)
		if a.Type != gjson.String {
			return refuse(rule, "the join rule is "+jr+" and content has no join_authorised_via_users_server")
		}
		if x.membership(a.Str) != membershipJoin {
			return refuse(rule, "join_authorised_via_users_server is not joined to the room")
		}
		levels, err := x.powerLevels()
		if err != nil {
			return err
		}
		if levels.UserLevel(a.Str) < levels.Invite {
			return refuse(rule, "join_authorised_via_users_server cannot invite users")
		}
		return nil
	case jr == joinRulePublic:
		return nil
	}
	return refuse(rule, "the join rule "+strconv.Quote(jr)+" does not let the sender join")
}

func (x *checkCtx) checkInvite(target string) error {
	const rule = "m.room.member invite"
	ev := x.ev
	if tpi := gjson.GetBytes(ev.Content(), "third_party_invite"); tpi.Exists() {
		return x.checkThirdPartyInvite(target, tpi)
	}
	if x.membership(ev.Sender()) != membershipJoin {
		return refuse(rule, "the sender is not joined to the room")
	}
	switch x.membership(target) {
	case membershipJoin:
		return refuse(rule, "the target user is already joined")
	case membershipBan:
		return refuse(rule, "the target user is banned")
	}
	levels, err := x.powerLevels()
	if err != nil {
		return err
	}
	if levels.UserLevel(ev.Sender()) < levels.Invite {
		return refuse(rule, "the sender's power level is below the invite level")
	}
	return nil
}

func (x *checkCtx) checkLeave(target string) error {
	const rule = "m.room.member leave"
	ev := x.ev
	cur := x.membership(ev.Sender())
	if ev.Sender() == target {
		if cur == membershipInvite || cur == membershipJoin || (x.ver.Knocking && cur == membershipKnock) {
			return nil
		}
		return refuse(rule, "the sender is not joined, invited or knocking, so cannot leave")
	}
	if cur != membershipJoin {
		return refuse(rule, "the sender is not joined to the room")
	}
	levels, err := x.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := levels.UserLevel(ev.Sender())
	if x.membership(target) == membershipBan && senderLevel < levels.Ban {
		return refuse(rule, "the target user is banned and the sender's power level is below the ban level")
	}
	if senderLevel >= levels.Kick && levels.UserLevel(target) < senderLevel {
		return nil
	}
	return refuse(rule, "the sender's power level is below the kick level or not above the target user's")
}

func (x *checkCtx) checkBan(target string) error {
	const rule = "m.room.member ban"
	ev := x.ev
	if x.membership(ev.Sender()) != membershipJoin {
		return refuse(rule, "the sender is not joined to the room")
	}
	levels, err := x.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := levels.UserLevel(ev.Sender())
	if senderLevel >= levels.Ban && levels.UserLevel(target) < senderLevel {
		return nil
	}
	return refuse(rule, "the sender's power level is below the ban level or not above the target user's")
}

func (x *checkCtx) checkKnock(target string) error {
	const rule = "m.room.member knock"
	ev := x.ev
	jr := x.joinRule()
	if jr != joinRuleKnock && !(x.ver.KnockRestricted && jr == joinRuleKnockRestrict) {
		return refuse(rule, "the join rule "+strconv.Quote(jr)+" does not allow knocking")
	}
	if ev.Sender() != target {
		return refuse(rule, "the sender is not the user knocking")
	}
	switch cur := x.membership(target); cur {
	case membershipBan, membershipInvite, membershipJoin:
		return refuse(rule, "the sender's membership is already "+cur)
	}
	return nil
}
