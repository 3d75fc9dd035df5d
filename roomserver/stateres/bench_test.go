package stateres

import (
	"fmt"
	"sync"
	"testing"
)

// The benchmarks resolve a fork in a large room: N members joined, then two
// branches of 50 state events each (power levels, join rules, topic and name
// changes, kicks, bans, leaves, display name changes), 100 conflicted keys.
// The room is built once per size and version, outside the timed loop.

type benchRoom struct {
	f    *fixture
	sets []StateMap
}

var (
	benchMu    sync.Mutex
	benchRooms = map[string]*benchRoom{}
)

func benchFixture(b *testing.B, ver string, members int) *benchRoom {
	benchMu.Lock()
	defer benchMu.Unlock()
	key := fmt.Sprintf("%s/%d", ver, members)
	if r, ok := benchRooms[key]; ok {
		return r
	}
	root := newRoom(b, ver)
	f := root.f
	root.send("", typePowerLevels, "", "alice", f.levels("alice", 100))
	root.send("", typeJoinRules, "", "alice", `{"join_rule":"public"}`)
	m := func(i int) string { return fmt.Sprintf("m%06d", i) }
	for i := range members {
		root.join("", m(i))
	}
	displayname := func(br *branch, i int) {
		br.send("", typeMember, user(m(i)), m(i), fmt.Sprintf(`{"membership":"join","displayname":"member %d"}`, i))
	}

	a := root.fork()
	a.send("", typePowerLevels, "", "alice", f.levels("alice", 100, m(0), 50))
	a.topic("", "alice", "fork a")
	for i := 1; i <= 24; i++ {
		displayname(a, i)
	}
	for i := 25; i <= 36; i++ {
		a.member("", "alice", m(i), "leave")
	}
	for i := 37; i <= 48; i++ {
		a.member("", m(i), m(i), "leave")
	}

	c := root.fork()
	c.send("", "m.room.name", "", "alice", `{"name":"fork b"}`)
	for i := 49; i <= 60; i++ {
		c.member("", "alice", m(i), "ban")
	}
	for i := 61; i <= 84; i++ {
		displayname(c, i)
	}
	for i := 85; i <= 96; i++ {
		c.member("", m(i), m(i), "leave")
	}
	c.send("", typeJoinRules, "", "alice", `{"join_rule":"invite"}`)

	r := &benchRoom{f: f, sets: []StateMap{a.state, c.state}}
	benchRooms[key] = r
	return r
}

func benchResolve(b *testing.B, members int) {
	for _, ver := range []string{"11", "12"} {
		b.Run("v"+ver, func(b *testing.B) {
			r := benchFixture(b, ver, members)
			_, conflicted, _ := separate(r.sets, true)
			if len(conflicted) != 100 {
				b.Fatalf("%d conflicted keys, want 100", len(conflicted))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got, err := Resolve(r.f.ver, r.sets, r.f.src)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) < members {
					b.Fatalf("resolved state has %d entries", len(got))
				}
			}
		})
	}
}

func BenchmarkResolve10kMembers(b *testing.B)  { benchResolve(b, 10_000) }
func BenchmarkResolve100kMembers(b *testing.B) { benchResolve(b, 100_000) }
