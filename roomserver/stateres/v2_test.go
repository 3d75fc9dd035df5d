package stateres

import (
	"testing"
)

// v2Versions are the room versions resolved with state resolution v2 or
// v2.1. The classic scenarios give the same result under both.
var v2Versions = []string{"2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}

func forVersions(t *testing.T, versions []string, fn func(t *testing.T, ver string)) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) { fn(t, v) })
	}
}

// Alice bans Bob while Bob, concurrently, sends a power levels event. The
// ban sorts first (Alice has more power), so Bob's event fails: he is no
// longer in the room.
func TestBanVersusPowerLevels(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.join("MA", "alice")
		a.member("MB", "alice", "bob", "ban")
		b := root.fork()
		b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50))

		f.check(t, resolve(a, b),
			want{keyPL, "PA"}, want{keyMember("alice"), "MA"}, want{keyMember("bob"), "MB"})
	})
}

// Alice makes the room invite-only while Ella, concurrently, joins it under
// the public join rule. The join rules are a power event and apply first, so
// Ella's join fails.
func TestJoinRuleEvasion(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		a := root.fork()
		a.send("JR", typeJoinRules, "", "alice", `{"join_rule":"invite"}`)
		b := root.fork()
		b.join("ME", "ella")

		f.check(t, resolve(a, b), want{keyJR, "JR"}, want{keyMember("ella"), ""})
	})
}

// Power levels changed in a line by three users, one fork stopping early:
// the latest, valid at each step, wins.
func TestOfftopicPowerLevels(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))
		a.send("PC", typePowerLevels, "", "charlie", f.levels("alice", 100, "bob", 50, "charlie", 0))

		f.check(t, resolve(a, root), want{keyPL, "PC"})
	})
}

// Alice demotes Bob while Bob, concurrently, changes the power levels and
// the topic: the demotion wins and Bob's changes are undone. This is the
// case of power levels changed by a user who lost power.
func TestTopicBasic(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.topic("T1", "alice", "one")
		root.send("PA1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.topic("T2", "alice", "two")
		a.send("PA2", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 0))
		b := root.fork()
		b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50))
		b.topic("T3", "bob", "three")

		f.check(t, resolve(a, b), want{keyPL, "PA2"}, want{keyTopic, "T2"})
	})
}

// Bob sets the topic and Alice then bans him; a fork that saw none of it
// keeps the first topic. The topic resets to T1 rather than keeping the
// topic of a banned user, because his ban applies before his topic.
func TestTopicReset(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.topic("T1", "alice", "one")
		a := root.fork()
		a.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a.topic("T2", "bob", "two")
		a.member("MB", "alice", "bob", "ban")

		f.check(t, resolve(a, root),
			want{keyTopic, "T1"}, want{keyMember("bob"), "MB"}, want{keyPL, "PA"})
	})
}

// A resolution inside the DAG (Zara's message merges the forks) followed by
// a later topic: the later topic wins over the merged one.
func TestTopicAfterMerge(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.topic("T1", "alice", "one")
		root.send("PA1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.topic("T2", "alice", "two")
		a.send("PA2", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 0))
		b := root.fork()
		b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50))
		b.topic("T3", "bob", "three")
		m := merge(a, b)
		m.message("MZ1", "zara")
		after := m.fork()
		after.topic("T4", "alice", "four")

		f.check(t, resolve(after, m), want{keyTopic, "T4"}, want{keyPL, "PA2"})
	})
}

// The mainline ordering: Bob's topic T3 cites the resolved power levels PA2,
// Alice's T4 cites Bob's rejected PB, which is off the mainline and based on
// PA1. T4 is ordered first and T3, later on the mainline, wins.
func TestMainlineSort(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.topic("T1", "alice", "one")
		root.send("PA1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.topic("T2", "alice", "two")
		a.send("PA2", typePowerLevels, "", "alice",
			f.levels("alice", 100, "bob", 50, "events", `{"m.room.power_levels":100}`))
		a.topic("T3", "bob", "three")
		b := root.fork()
		b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50))
		b.topic("T4", "alice", "four")

		f.check(t, resolve(a, b), want{keyTopic, "T3"}, want{keyPL, "PA2"})
	})
}

// Kicks and bans race: Bob (moderator) kicks Charlie while Alice demotes Bob.
// The demotion sorts first; the kick then fails and Charlie stays.
func TestKickByDemotedModerator(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
		a := root.fork()
		a.send("PD", typePowerLevels, "", "alice", f.levels("alice", 100))
		b := root.fork()
		b.member("KC", "bob", "charlie", "leave")

		f.check(t, resolve(a, b),
			want{keyPL, "PD"}, want{keyMember("charlie"), "IMC"}, want{keyMember("bob"), "IMB"})
	})
}

// Resolving a state with itself, or with no conflict, changes nothing.
func TestResolveWithoutConflict(t *testing.T) {
	forVersions(t, append([]string{"1"}, v2Versions...), func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		root.topic("T1", "alice", "one")
		got := resolve(root, root.fork(), root.fork())
		if !stateEqual(got, root.state) {
			t.Errorf("got %v, want %v", got, root.state)
		}
	})
}

// Three forks: the resolution is over all of them at once.
func TestThreeForks(t *testing.T) {
	forVersions(t, v2Versions, func(t *testing.T, ver string) {
		root := initialRoom(t, ver)
		f := root.f
		root.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50, "charlie", 75))
		a := root.fork()
		a.topic("TA", "bob", "a")
		b := root.fork()
		b.member("BB", "charlie", "bob", "ban")
		c := root.fork()
		c.topic("TC", "charlie", "c")

		// Bob is banned; his topic then fails. Charlie's stands.
		f.check(t, resolve(a, b, c), want{keyMember("bob"), "BB"}, want{keyTopic, "TC"})
	})
}
