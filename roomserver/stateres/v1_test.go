package stateres

import (
	"bytes"
	"crypto/sha1"
	"testing"
)

// Room version 1 resolves by class and depth; these tests pin its known
// weaknesses (which v2 fixed) as well as its rules.

// The ban versus power levels race of TestBanVersusPowerLevels. Bob's power
// levels event fails (his membership is conflicted, so absent when the
// power levels are resolved), but so does Alice's ban: memberships are
// resolved against the state before any membership is, where Alice's own,
// conflicted, membership is absent too.
func TestV1BanVersusPowerLevels(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	a := root.fork()
	a.join("MA", "alice")
	a.member("MB", "alice", "bob", "ban")
	b := root.fork()
	b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50))

	f.check(t, resolve(a, b),
		want{keyPL, "PA"}, want{keyMember("alice"), "MA"}, want{keyMember("bob"), "IMB"})
}

// A key present in one state only is not a conflict in v1: Ella's join
// survives the concurrent switch to invite-only.
func TestV1JoinRuleEvasion(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	a := root.fork()
	a.send("JR", typeJoinRules, "", "alice", `{"join_rule":"invite"}`)
	b := root.fork()
	b.join("ME", "ella")

	f.check(t, resolve(a, b), want{keyJR, "JR"}, want{keyMember("ella"), "ME"})
}

// Power levels are taken in ascending depth, each checked against the one
// before: Charlie's PC is checked against PA, under which he has no power,
// so PA stays (v2 picks PC).
func TestV1PowerLevelsChain(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	a := root.fork()
	a.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))
	a.send("PC", typePowerLevels, "", "charlie", f.levels("alice", 100, "bob", 50, "charlie", 0))

	f.check(t, resolve(a, root), want{keyPL, "PA"})
}

// A chain of power levels changes that each pass: the deepest wins.
func TestV1PowerLevelsAllPass(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	a := root.fork()
	a.send("PB", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 60))
	b := root.fork()
	b.send("PC", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 40))
	b.send("PD", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 30))

	f.check(t, resolve(a, b), want{keyPL, "PD"})
}

// Other events: the deepest one the auth rules allow wins. Bob's deeper
// topic fails after Alice's concurrent demotion, so the root topic stays.
func TestV1TopicDeepestAllowed(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	root.topic("T0", "alice", "zero")
	a := root.fork()
	a.send("PD", typePowerLevels, "", "alice", f.levels("alice", 100))
	b := root.fork()
	b.topic("TB1", "bob", "one")
	b.topic("TB2", "bob", "two")

	f.check(t, resolve(a, b), want{keyPL, "PD"}, want{keyTopic, "T0"})

	// Without the demotion Bob's deepest topic wins.
	c := root.fork()
	c.topic("TC", "alice", "c")
	f.check(t, resolve(c, b), want{keyTopic, "TB2"})
}

// Equal depths are ordered by SHA-1 of the event ID: the lowest wins among
// allowed events; when none is allowed the last in order, with the lowest
// depth and then the highest SHA-1, is kept.
func TestV1SHA1Order(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50, "charlie", 50))
	a := root.fork()
	b := root.fork()
	a.topic("TA", "bob", "a")
	b.topic("TB", "charlie", "b")
	lowest, highest := "TA", "TB"
	if sa, sb := sha1.Sum([]byte(f.id("TA"))), sha1.Sum([]byte(f.id("TB"))); bytes.Compare(sa[:], sb[:]) > 0 {
		lowest, highest = "TB", "TA"
	}
	f.check(t, resolve(a, b), want{keyTopic, lowest})

	// Alice demotes both: neither topic is allowed any more.
	c := root.fork()
	c.send("PD", typePowerLevels, "", "alice", f.levels("alice", 100))
	f.check(t, resolve(a, b, c), want{keyPL, "PD"}, want{keyTopic, highest})
}

// Memberships resolve by the membership rules: a kick of a user by someone
// with power is applied.
func TestV1Kick(t *testing.T) {
	root := initialRoom(t, "1")
	f := root.f
	root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	a := root.fork()
	a.member("KZ", "bob", "zara", "leave")
	b := root.fork()
	b.topic("T", "alice", "t")

	f.check(t, resolve(a, b), want{keyMember("zara"), "KZ"}, want{keyTopic, "T"})
}
