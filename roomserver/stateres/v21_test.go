package stateres

import (
	"slices"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// MSC4297 problem A: both forks agree that Alice left, but one fork's state
// (from a partial synchronisation) holds her older join rules. Replayed on
// top of the unconflicted state (v2), both join rules events fail, Alice not
// being in the room, and the room loses its join rules. v2.1 replays them
// from the empty state, reading Alice's membership from their auth events,
// and keeps the newer join rules.
func TestStartsFromEmptyState(t *testing.T) {
	for ver, wantJR := range map[string]string{"11": "", "12": "JR2"} {
		t.Run("v"+ver, func(t *testing.T) {
			root := initialRoom(t, ver)
			f := root.f
			root.send("JR1", typeJoinRules, "", "alice", `{"join_rule":"invite"}`)
			root.send("JR2", typeJoinRules, "", "alice", `{"join_rule":"public"}`)
			root.member("LA", "alice", "alice", "leave")
			stale := copyState(root.state)
			stale[keyJR] = f.id("JR1")

			got, err := Resolve(f.ver, []StateMap{root.state, stale}, f.src)
			if err != nil {
				t.Fatal(err)
			}
			f.check(t, got, want{keyJR, wantJR}, want{keyMember("alice"), "LA"})
		})
	}
}

// MSC4297 problem B: Alice promotes Bob (PL1), Bob promotes Charlie (PL2).
// One fork's state holds the original power levels, yet both forks saw PL1
// through Dave's join, so PL1 is not in the auth difference. Without PL1
// replayed, PL2 is checked against the original power levels and fails; v2.1
// replays the conflicted subgraph, PL1 included, and keeps PL2.
func TestIncludesConflictedSubgraph(t *testing.T) {
	for ver, wantPL := range map[string]string{"11": "IPOWER", "12": "PL2"} {
		t.Run("v"+ver, func(t *testing.T) {
			root := initialRoom(t, ver)
			f := root.f
			root.send("PL1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
			root.join("JD", "dave")
			root.send("PL2", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))
			stale := copyState(root.state)
			stale[keyPL] = f.id("IPOWER")

			got, err := Resolve(f.ver, []StateMap{root.state, stale}, f.src)
			if err != nil {
				t.Fatal(err)
			}
			f.check(t, got, want{keyPL, wantPL}, want{keyMember("dave"), "JD"})
		})
	}
}

// The conflicted subgraph of problem B is exactly the events on auth paths
// from PL2 down to IPOWER.
func TestConflictedSubgraphMembers(t *testing.T) {
	root := initialRoom(t, "12")
	f := root.f
	root.send("PL1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	root.join("JD", "dave")
	root.send("PL2", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))

	r := newResolver(f.ver, f.src, 0)
	var conflicted []int32
	for _, name := range []string{"IPOWER", "PL2"} {
		i, _, err := r.g.loadState(keyPL, f.id(name))
		if err != nil {
			t.Fatal(err)
		}
		r.g.nodes[i].flags |= flagConflicted
		conflicted = append(conflicted, i)
	}
	sub, err := r.conflictedSubgraph(conflicted)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range sub {
		got = append(got, f.label(r.g.nodes[i].id))
	}
	slices.Sort(got)
	// PL2 cites PL1 and Bob's join; Bob's join cites the join rules and
	// IPOWER; PL1 and the join rules cite IPOWER. Alice's join and the
	// create event are below IPOWER, so on no path between the two.
	if want := []string{"IJR", "IMB", "IPOWER", "PL1", "PL2"}; !slices.Equal(got, want) {
		t.Errorf("subgraph %v, want %v", got, want)
	}
}

// Room version 12 creators outrank every power level in the power ordering.
// Bob (level 100) changes the power levels before Alice does, concurrently.
// In v11 they tie on power and Bob's earlier event goes first, so Alice's
// applies last and wins. In v12 Alice, the creator, goes first and Bob's
// applies last. With Bob an additional creator they tie again.
func TestCreatorsSortFirst(t *testing.T) {
	cases := []struct {
		ver, createExtra, want string
	}{
		{"11", "", "PA"},
		{"12", "", "PB"},
		{"12", `"additional_creators":["@bob:example.org"]`, "PA"},
	}
	for _, c := range cases {
		t.Run("v"+c.ver+c.createExtra, func(t *testing.T) {
			root := newRoomWith(t, c.ver, c.createExtra)
			f := root.f
			root.send("P0", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 100))
			root.send("J0", typeJoinRules, "", "alice", `{"join_rule":"public"}`)
			root.join("JB", "bob")
			a := root.fork()
			b := root.fork()
			b.send("PB", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 100, "charlie", 10))
			a.send("PA", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 100, "zara", 20))
			f.check(t, resolve(a, b), want{keyPL, c.want})
		})
	}
}

// A rejected auth event is not used in place of missing state. Problem A
// again, with Alice's join marked rejected: the join rules events cannot
// borrow it and fail.
func TestRejectedAuthEventNotUsed(t *testing.T) {
	root := initialRoom(t, "12")
	f := root.f
	root.send("JR1", typeJoinRules, "", "alice", `{"join_rule":"invite"}`)
	root.send("JR2", typeJoinRules, "", "alice", `{"join_rule":"public"}`)
	root.member("LA", "alice", "alice", "leave")
	stale := copyState(root.state)
	stale[keyJR] = f.id("JR1")

	src := rejectingSource{EventMap: f.src, rejected: map[string]bool{f.id("IMA"): true}}
	got, err := Resolve(f.ver, []StateMap{root.state, stale}, src)
	if err != nil {
		t.Fatal(err)
	}
	f.check(t, got, want{keyJR, ""})

	// A rejected event that is itself replayed is handled as usual: rejected
	// by the state before it, it may still pass here.
	src.rejected = map[string]bool{f.id("JR2"): true}
	got, err = Resolve(f.ver, []StateMap{root.state, stale}, src)
	if err != nil {
		t.Fatal(err)
	}
	f.check(t, got, want{keyJR, "JR2"})
}

type rejectingSource struct {
	EventMap
	rejected map[string]bool
}

func (s rejectingSource) Rejected(id string) bool { return s.rejected[id] }

// The create event of a version 12 room is an auth event of every other
// event even though none lists it.
func TestImplicitCreateAuthEvent(t *testing.T) {
	root := initialRoom(t, "12")
	f := root.f
	r := newResolver(f.ver, f.src, 0)
	i, _, err := r.g.loadState(keyMember("bob"), f.id("IMB"))
	if err != nil {
		t.Fatal(err)
	}
	var auth []string
	for _, a := range r.g.auth(i) {
		auth = append(auth, f.label(r.g.nodes[a].id))
	}
	if !slices.Contains(auth, "CREATE") {
		t.Errorf("auth events of IMB %v lack CREATE", auth)
	}
	if ev := f.src[f.id("IMB")]; slices.Contains(ev.AuthEventIDs(), f.id("CREATE")) {
		t.Errorf("IMB lists the create event itself: %v", ev.AuthEventIDs())
	}
	c, _, err := r.g.loadState(pdu.StateKey{Type: typeCreate}, f.id("CREATE"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.g.auth(c)); n != 0 {
		t.Errorf("create event has %d auth events", n)
	}
}

// The auth difference of problem B is PL2 alone: PL1 is in both full auth
// chains (through Dave's join), and Bob's join, which only PL2 cites, is
// unconflicted state, so in both. The walk and an auth chain index agree.
func TestAuthDifference(t *testing.T) {
	root := initialRoom(t, "11")
	f := root.f
	root.send("PL1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
	root.join("JD", "dave")
	root.send("PL2", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))
	stale := copyState(root.state)
	stale[keyPL] = f.id("IPOWER")
	sets := []StateMap{root.state, stale}

	for name, src := range map[string]EventSource{"walk": f.src, "index": chainSource{f.src}} {
		unconflicted, _, err := separate(sets, true)
		if err != nil {
			t.Fatal(err)
		}
		r := newResolver(f.ver, src, 0)
		perSet := make([][]int32, 2)
		for si, name := range []string{"PL2", "IPOWER"} {
			i, _, err := r.g.loadState(keyPL, f.id(name))
			if err != nil {
				t.Fatal(err)
			}
			perSet[si] = []int32{i}
		}
		diff, err := r.authDifference(unconflicted, perSet)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, i := range diff {
			got = append(got, f.label(r.g.nodes[i].id))
		}
		if !slices.Equal(got, []string{"PL2"}) {
			t.Errorf("%s: auth difference %v, want [PL2]", name, got)
		}
	}
}
