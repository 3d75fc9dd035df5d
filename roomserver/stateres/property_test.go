package stateres

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// randomForks grows a room at random: a few users with random power, then
// several branches of random state changes (topics, names, power levels,
// joins, leaves, kicks, bans, join rules), sometimes merging two branches on
// the way. Each event is kept only if the auth rules allow it against its
// auth events. It returns the states of the final branches.
func randomForks(tb testing.TB, ver string, rng *rand.Rand) (*fixture, []StateMap) {
	tb.Helper()
	root := initialRoom(tb, ver)
	f := root.f
	users := []string{"alice", "bob", "charlie", "zara", "dave", "erin", "frank"}
	for _, u := range users[4:] {
		root.join("", u)
	}
	randomLevels := func() string {
		pairs := []any{"alice", 100}
		for _, u := range users[1:] {
			if rng.IntN(2) == 0 {
				pairs = append(pairs, u, 10*rng.IntN(11))
			}
		}
		return f.levels(pairs...)
	}
	root.send("", typePowerLevels, "", "alice", randomLevels())

	branches := []*branch{root.fork(), root.fork()}
	for range rng.IntN(3) {
		branches = append(branches, root.fork())
	}
	steps := 30 + rng.IntN(40)
	for range steps {
		bi := rng.IntN(len(branches))
		b := branches[bi]
		if len(branches) > 2 && rng.IntN(8) == 0 {
			// Merge another branch into this one.
			oi := (bi + 1 + rng.IntN(len(branches)-1)) % len(branches)
			branches[bi] = merge(b, branches[oi])
			continue
		}
		sender := users[rng.IntN(len(users))]
		if rng.IntN(3) == 0 {
			sender = "alice" // the admin, whose changes mostly pass
		}
		target := user(users[rng.IntN(len(users))])
		var typ, key, content string
		switch rng.IntN(8) {
		case 0:
			typ, content = "m.room.topic", fmt.Sprintf(`{"topic":"t%d"}`, rng.IntN(1000))
		case 1:
			typ, content = "m.room.name", fmt.Sprintf(`{"name":"n%d"}`, rng.IntN(1000))
		case 2:
			typ, content = typePowerLevels, randomLevels()
		case 3:
			typ = typeJoinRules
			content = []string{`{"join_rule":"public"}`, `{"join_rule":"invite"}`}[rng.IntN(2)]
		default:
			typ, key = typeMember, target
			if rng.IntN(2) == 0 {
				key = user(sender) // self join/leave
			}
			m := []string{"join", "leave", "ban", "invite"}[rng.IntN(4)]
			content = fmt.Sprintf(`{"membership":%q}`, m)
		}
		_, _ = b.try("", typ, &key, sender, content)
	}
	sets := make([]StateMap, len(branches))
	for i, b := range branches {
		sets[i] = b.state
	}
	return f, sets
}

// The resolution does not depend on the order of the state sets (nor on
// map iteration order, which Go randomises at every run).
func TestOrderIndependence(t *testing.T) {
	versions := []string{"1", "2", "6", "10", "11", "12"}
	const rooms, shuffles = 25, 12
	for _, ver := range versions {
		t.Run("v"+ver, func(t *testing.T) {
			for seed := range uint64(rooms) {
				rng := rand.New(rand.NewPCG(seed, 4297))
				f, sets := randomForks(t, ver, rng)
				want, err := Resolve(f.ver, sets, f.src)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				for s := range shuffles {
					shuffled := make([]StateMap, len(sets))
					for i, j := range rng.Perm(len(sets)) {
						shuffled[i] = copyState(sets[j])
					}
					got, err := Resolve(f.ver, shuffled, f.src)
					if err != nil {
						t.Fatalf("seed %d shuffle %d: %v", seed, s, err)
					}
					if !stateEqual(got, want) {
						t.Fatalf("seed %d shuffle %d: order changed the result:\n got %v\nwant %v", seed, s, got, want)
					}
				}
				// An auth chain index gives the same answer as the walk.
				got, err := Resolve(f.ver, sets, chainSource{f.src})
				if err != nil {
					t.Fatalf("seed %d with AuthChainSource: %v", seed, err)
				}
				if !stateEqual(got, want) {
					t.Fatalf("seed %d: AuthChainSource changed the result:\n got %v\nwant %v", seed, got, want)
				}
			}
		})
	}
}

// Resolving a state set with itself is the identity, whatever the version.
func TestResolveIdempotent(t *testing.T) {
	for _, ver := range []string{"1", "5", "11", "12"} {
		rng := rand.New(rand.NewPCG(7, 7))
		f, sets := randomForks(t, ver, rng)
		for _, s := range sets {
			got, err := Resolve(f.ver, []StateMap{s, copyState(s)}, f.src)
			if err != nil {
				t.Fatal(err)
			}
			if !stateEqual(got, s) {
				t.Errorf("v%s: resolve(S, S) != S", ver)
			}
		}
	}
}

// chainSource implements AuthChainSource by walking the events, as a store
// would answer from its index.
type chainSource struct{ EventMap }

func (s chainSource) AuthChain(ids []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	stack := append([]string(nil), ids...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ev, err := s.Event(id)
		if err != nil {
			return nil, err
		}
		auth := ev.AuthEventIDs()
		if ev.Version().CreateEventIsRoomID && !isCreateEvent(ev) {
			auth = append(append([]string(nil), auth...), "$"+ev.RoomID()[1:])
		}
		for _, a := range auth {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
				stack = append(stack, a)
			}
		}
	}
	return out, nil
}

var _ AuthChainSource = chainSource{}
