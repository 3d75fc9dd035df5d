package auth

import (
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

const (
	join   = `{"membership":"join"}`
	invite = `{"membership":"invite"}`
	leave  = `{"membership":"leave"}`
	ban    = `{"membership":"ban"}`
	knock  = `{"membership":"knock"}`
)

func TestMemberBasics(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "no state_key", want: "m.room.member: event has no state_key", ev: func(r *room) *pdu.Event {
			return r.event(alice, typeMember, nil, join)
		}},
		{name: "no membership", want: "content has no membership", ev: func(r *room) *pdu.Event {
			return r.member(alice, alice, `{"displayname":"A"}`)
		}},
		{name: "membership a number", want: "content.membership is not a string", ev: func(r *room) *pdu.Event {
			return r.member(alice, alice, `{"membership":1}`)
		}},
		{name: "membership an object", want: "not a string", ev: func(r *room) *pdu.Event {
			return r.member(alice, alice, `{"membership":{"join":true}}`)
		}},
		{name: "unknown membership", want: `unknown membership "private"`, ev: func(r *room) *pdu.Event {
			return r.member(alice, alice, `{"membership":"private"}`)
		}},
		{name: "empty membership", want: `unknown membership ""`, ev: func(r *room) *pdu.Event {
			return r.member(alice, alice, `{"membership":""}`)
		}},
		{name: "knock before v7", to: 6, want: `unknown membership "knock"`, setup: func(r *room) { r.joinRule(joinRuleKnock) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
	})
}

func TestJoin(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "creator first join", ev: func(r *room) *pdu.Event {
			delete(r.state, pdu.StateKey{Type: typeMember, StateKey: alice})
			r.prev = []string{r.create.EventID()}
			return r.member(alice, alice, join)
		}},
		{name: "creator first join sent by another", ev: func(r *room) *pdu.Event {
			delete(r.state, pdu.StateKey{Type: typeMember, StateKey: alice})
			r.prev = []string{r.create.EventID()}
			return r.member(bob, alice, join)
		}},
		{name: "non-creator right after create", want: "m.room.member join: the join rule is invite and the sender is not invited", ev: func(r *room) *pdu.Event {
			r.prev = []string{r.create.EventID()}
			return r.member(carol, carol, join)
		}},
		{name: "creator join with two prev events", want: "m.room.member join", ev: func(r *room) *pdu.Event {
			r.set(alice, membershipLeave)
			r.prev = []string{r.create.EventID(), r.prev[0]}
			return r.member(alice, alice, join)
		}},
		{name: "for someone else", want: "m.room.member join: the sender is not the user joining", setup: func(r *room) { r.joinRule(joinRulePublic) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, join) }},
		{name: "banned", want: "m.room.member join: the sender is banned", setup: func(r *room) { r.joinRule(joinRulePublic); r.set(bob, membershipBan) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "public", setup: func(r *room) { r.joinRule(joinRulePublic) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "no join rules is invite", want: "not invited",
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "no join rules, invited", setup: func(r *room) { r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "join_rule missing is invite", want: "not invited", setup: func(r *room) {
			r.apply(r.event(alice, typeJoinRules, sp(""), `{}`))
		}, ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "join_rule not a string", want: `the join rule "" does not let`, setup: func(r *room) {
			r.apply(r.event(alice, typeJoinRules, sp(""), `{"join_rule":["public"]}`))
		}, ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "invite rule, invited", setup: func(r *room) { r.joinRule(joinRuleInvite); r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "invite rule, already joined", setup: func(r *room) { r.joinRule(joinRuleInvite); r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, `{"membership":"join","displayname":"B"}`) }},
		{name: "invite rule, left", want: "not invited", setup: func(r *room) { r.joinRule(joinRuleInvite); r.set(bob, membershipLeave) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "knock rule, invited", from: 7, setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "knock rule, invited, before v7", to: 6, want: `the join rule "knock" does not let`, setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "knock rule, knocked", from: 7, want: "not invited", setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipKnock) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
		{name: "private rule", want: `the join rule "private" does not let`, setup: func(r *room) { r.joinRule("private"); r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
	})
}

// restrictedJoin builds bob's join authorised by the user, co-signed by the
// user's server when cosign is set.
func restrictedJoin(r *room, authoriser string, cosign bool) *pdu.Event {
	ev := r.member(bob, bob, `{"membership":"join","join_authorised_via_users_server":"`+authoriser+`"}`)
	if cosign {
		ev = coSign(r.t, ev, domain(authoriser))
	}
	return ev
}

func TestRestrictedJoin(t *testing.T) {
	var cases []ruleCase
	for _, rule := range []string{joinRuleRestricted, joinRuleKnockRestrict} {
		from := 8
		if rule == joinRuleKnockRestrict {
			from = 10
		}
		cases = append(cases,
			ruleCase{name: rule + " authorised", from: from, setup: func(r *room) { r.joinRule(rule); r.set(carol, membershipJoin) },
				ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
			ruleCase{name: rule + " invited", from: from, setup: func(r *room) { r.joinRule(rule); r.set(bob, membershipInvite) },
				ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
			ruleCase{name: rule + " no authoriser", from: from, want: "content has no join_authorised_via_users_server", setup: func(r *room) { r.joinRule(rule) },
				ev: func(r *room) *pdu.Event { return r.member(bob, bob, join) }},
			ruleCase{name: rule + " authoriser not joined", from: from, want: "join_authorised_via_users_server is not joined", setup: func(r *room) { r.joinRule(rule); r.set(carol, membershipLeave) },
				ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
			ruleCase{name: rule + " authoriser cannot invite", from: from, want: "join_authorised_via_users_server cannot invite", setup: func(r *room) {
				r.joinRule(rule)
				r.set(carol, membershipJoin)
				r.powerLevels(r.adminPL(`"invite":50`))
			}, ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
			ruleCase{name: rule + " banned", from: from, want: "the sender is banned", setup: func(r *room) { r.joinRule(rule); r.set(carol, membershipJoin); r.set(bob, membershipBan) },
				ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
			ruleCase{name: rule + " not co-signed", from: from, want: "not signed by the server of join_authorised_via_users_server", setup: func(r *room) { r.joinRule(rule); r.set(carol, membershipJoin) },
				ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, false) }},
			ruleCase{name: rule + " unknown before", to: from - 1, want: "does not let the sender join", setup: func(r *room) { r.joinRule(rule); r.set(carol, membershipJoin) },
				ev: func(r *room) *pdu.Event { return restrictedJoin(r, carol, true) }},
		)
	}
	cases = append(cases,
		ruleCase{name: "authoriser is the sender's server", from: 8, setup: func(r *room) { r.joinRule(joinRuleRestricted); r.set(erin, membershipJoin) },
			ev: func(r *room) *pdu.Event { return restrictedJoin(r, erin, false) }},
		ruleCase{name: "authoriser on a public join is ignored before v8", to: 7, setup: func(r *room) { r.joinRule(joinRulePublic) },
			ev: func(r *room) *pdu.Event {
				return r.member(bob, bob, `{"membership":"join","join_authorised_via_users_server":5}`)
			}},
		ruleCase{name: "authoriser on a leave is not checked", from: 8, setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event {
				return r.member(bob, bob, `{"membership":"leave","join_authorised_via_users_server":"@x:elsewhere.test"}`)
			}},
	)
	runRuleCases(t, cases)
}

func TestInvite(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "by member", ev: func(r *room) *pdu.Event { return r.member(alice, bob, invite) }},
		{name: "by non-member", want: "m.room.member invite: the sender is not joined", setup: func(r *room) { r.set(carol, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(carol, bob, invite) }},
		{name: "target joined", want: "the target user is already joined", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, invite) }},
		{name: "target banned", want: "the target user is banned", setup: func(r *room) { r.set(bob, membershipBan) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, invite) }},
		{name: "target invited again", setup: func(r *room) { r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, invite) }},
		{name: "below invite level", want: "below the invite level", setup: func(r *room) {
			r.powerLevels(r.adminPL(`"invite":10`))
			r.set(carol, membershipJoin)
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, invite) }},
		{name: "default invite level 0", setup: func(r *room) {
			r.powerLevels(r.adminPL(""))
			r.set(carol, membershipJoin)
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, invite) }},
	})
}

func TestLeave(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "self from join", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "self from invite (reject)", setup: func(r *room) { r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "self from knock", from: 7, setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipKnock) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "self from knock before v7", to: 6, want: "the sender is not joined, invited or knocking", setup: func(r *room) { r.set(bob, membershipKnock) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "self without membership", want: "m.room.member leave: the sender is not joined, invited or knocking",
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "self when banned", want: "not joined, invited or knocking", setup: func(r *room) { r.set(bob, membershipBan) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, leave) }},
		{name: "kick by creator", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, leave) }},
		{name: "kick by non-member", want: "m.room.member leave: the sender is not joined", setup: func(r *room) { r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(carol, bob, leave) }},
		{name: "kick without kick level", want: "below the kick level", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.set(carol, membershipJoin)
			r.powerLevels(r.adminPL("", `"`+carol+`":49`))
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, leave) }},
		{name: "kick a peer", want: "not above the target user's", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.set(carol, membershipJoin)
			r.powerLevels(r.adminPL("", `"`+carol+`":50`, `"`+bob+`":50`))
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, leave) }},
		{name: "kick with custom level", setup: func(r *room) {
			r.set(bob, membershipJoin)
			r.set(carol, membershipJoin)
			r.powerLevels(r.adminPL(`"kick":10`, `"`+carol+`":10`))
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, leave) }},
		{name: "unban", setup: func(r *room) { r.set(bob, membershipBan) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, leave) }},
		{name: "unban without ban level", want: "the target user is banned and the sender's power level is below the ban level", setup: func(r *room) {
			r.set(bob, membershipBan)
			r.set(carol, membershipJoin)
			r.powerLevels(r.adminPL(`"kick":0,"ban":60`, `"`+carol+`":50`))
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, leave) }},
	})
}

func TestBan(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "by creator", ev: func(r *room) *pdu.Event { return r.member(alice, bob, ban) }},
		{name: "by non-member", want: "m.room.member ban: the sender is not joined", setup: func(r *room) { r.set(carol, membershipLeave) },
			ev: func(r *room) *pdu.Event { return r.member(carol, bob, ban) }},
		{name: "below ban level", want: "below the ban level", setup: func(r *room) { r.set(carol, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(carol, bob, ban) }},
		{name: "peer", want: "not above the target", setup: func(r *room) {
			r.set(carol, membershipJoin)
			r.powerLevels(r.adminPL("", `"`+carol+`":50`, `"`+bob+`":50`))
		}, ev: func(r *room) *pdu.Event { return r.member(carol, bob, ban) }},
		{name: "self by creator", want: "not above the target", ev: func(r *room) *pdu.Event { return r.member(alice, alice, ban) }},
	})
}

func TestKnock(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "knock rule", from: 7, setup: func(r *room) { r.joinRule(joinRuleKnock) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "after leaving", from: 7, setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipLeave) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "knock_restricted rule", from: 10, setup: func(r *room) { r.joinRule(joinRuleKnockRestrict) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "knock_restricted before v10", from: 7, to: 9, want: `the join rule "knock_restricted" does not allow knocking`, setup: func(r *room) { r.joinRule(joinRuleKnockRestrict) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "public room", from: 7, want: "m.room.member knock: the join rule \"public\" does not allow knocking", setup: func(r *room) { r.joinRule(joinRulePublic) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "no join rules", from: 7, want: "does not allow knocking",
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "for someone else", from: 7, want: "the sender is not the user knocking", setup: func(r *room) { r.joinRule(joinRuleKnock) },
			ev: func(r *room) *pdu.Event { return r.member(alice, bob, knock) }},
		{name: "already invited", from: 7, want: "already invite", setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipInvite) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "already joined", from: 7, want: "already join", setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipJoin) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
		{name: "banned", from: 7, want: "already ban", setup: func(r *room) { r.joinRule(joinRuleKnock); r.set(bob, membershipBan) },
			ev: func(r *room) *pdu.Event { return r.member(bob, bob, knock) }},
	})
}
