package stateres

import (
	"errors"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func TestResolveArguments(t *testing.T) {
	ver, _ := pdu.GetRoomVersion("11")
	src := EventMap{}
	s := StateMap{keyTopic: "$t"}
	if _, err := Resolve(nil, []StateMap{s}, src); err == nil {
		t.Error("nil version: no error")
	}
	if _, err := Resolve(ver, []StateMap{s}, nil); err == nil {
		t.Error("nil source: no error")
	}
	for _, sets := range [][]StateMap{
		{s, {keyTopic: ""}},
		{{keyTopic: ""}, s},
		{{keyTopic: ""}},
		{s, {keyPL: ""}},
	} {
		if _, err := Resolve(ver, sets, src); err == nil || !strings.Contains(err.Error(), "empty event ID") {
			t.Errorf("empty event ID in %v: %v", sets, err)
		}
	}
	if got, err := Resolve(ver, nil, src); err != nil || len(got) != 0 {
		t.Errorf("no state sets: %v, %v", got, err)
	}
	got, err := Resolve(ver, []StateMap{s}, src)
	if err != nil || !stateEqual(got, s) {
		t.Errorf("one state set: %v, %v", got, err)
	}
	got[keyTopic] = "$changed"
	if s[keyTopic] != "$t" {
		t.Error("the result shares the input map")
	}
	bogus := *ver
	bogus.StateRes = 99
	if _, err := Resolve(&bogus, []StateMap{s, s}, src); err == nil {
		t.Error("unknown algorithm: no error")
	}
}

func TestEventMap(t *testing.T) {
	var m EventMap = EventMap{"$nil": nil}
	for _, id := range []string{"$absent", "$nil"} {
		_, err := m.Event(id)
		var missing *MissingEventError
		if !errors.As(err, &missing) || missing.ID != id || !strings.Contains(err.Error(), id) {
			t.Errorf("%s: %v", id, err)
		}
	}
}

// faultySource misbehaves for one event ID: it fails, returns nothing, or
// returns another event.
type faultySource struct {
	EventMap
	bad  string
	mode int // 0 error, 1 nil event, 2 another event
}

var errInjected = errors.New("injected failure")

func (s faultySource) Event(id string) (*pdu.Event, error) {
	if id != s.bad {
		return s.EventMap.Event(id)
	}
	switch s.mode {
	case 0:
		return nil, errInjected
	case 1:
		return nil, nil
	}
	for other, ev := range s.EventMap {
		if other != id {
			return ev, nil
		}
	}
	return nil, errInjected
}

// faultyChainSource is a faultySource with an auth chain index that fails
// when asked about the bad event.
type faultyChainSource struct{ faultySource }

func (s faultyChainSource) AuthChain(ids []string) ([]string, error) {
	for _, id := range ids {
		if id == s.bad && s.mode == 0 {
			return nil, errInjected
		}
	}
	return chainSource{s.EventMap}.AuthChain(ids)
}

// Whichever event the source cannot supply, Resolve either does not need it
// (and returns the right answer) or fails with an error naming the cause;
// it never panics or returns a wrong state.
func TestFaultySource(t *testing.T) {
	scenarios := map[string]func(t *testing.T, ver string) (*fixture, []StateMap){
		"topic": func(t *testing.T, ver string) (*fixture, []StateMap) {
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
			b.member("KZ", "bob", "zara", "leave")
			return f, []StateMap{a.state, b.state}
		},
		"subgraph": func(t *testing.T, ver string) (*fixture, []StateMap) {
			root := initialRoom(t, ver)
			f := root.f
			root.send("PL1", typePowerLevels, "", "alice", f.levels("alice", 100, "bob", 50))
			root.join("JD", "dave")
			root.send("PL2", typePowerLevels, "", "bob", f.levels("alice", 100, "bob", 50, "charlie", 50))
			stale := copyState(root.state)
			stale[keyPL] = f.id("IPOWER")
			return f, []StateMap{root.state, stale}
		},
	}
	for name, build := range scenarios {
		for _, ver := range []string{"1", "2", "11", "12"} {
			t.Run(name+"/v"+ver, func(t *testing.T) {
				f, sets := build(t, ver)
				want, err := Resolve(f.ver, sets, f.src)
				if err != nil {
					t.Fatal(err)
				}
				failures := 0
				for id := range f.src {
					for mode := range 3 {
						for _, src := range []EventSource{
							faultySource{f.src, id, mode},
							faultyChainSource{faultySource{f.src, id, mode}},
						} {
							got, err := Resolve(f.ver, sets, src)
							if err == nil {
								if !stateEqual(got, want) {
									t.Fatalf("event %s mode %d: wrong state without error", f.label(id), mode)
								}
								continue
							}
							failures++
							var missing *MissingEventError
							switch {
							case mode == 0 && !errors.Is(err, errInjected),
								mode == 1 && !errors.As(err, &missing),
								mode == 2 && !strings.Contains(err.Error(), "when asked for"):
								t.Errorf("event %s mode %d: unexpected error %v", f.label(id), mode, err)
							}
						}
					}
				}
				if failures == 0 {
					t.Error("no fault was ever noticed")
				}
			})
		}
	}
}

// Events that do not belong in the resolution are refused.
func TestMalformedInput(t *testing.T) {
	for _, ver := range []string{"1", "11", "12"} {
		t.Run("v"+ver, func(t *testing.T) {
			root := initialRoom(t, ver)
			f := root.f
			a := root.fork()
			a.topic("T1", "alice", "one")
			msg := a.message("M", "alice")

			other := initialRoom(t, ver)
			foreign := other.topic("TX", "alice", "x")
			f.src.Add(foreign)

			old := initialRoom(t, "10").topic("TV", "alice", "v")
			f.src.Add(old)

			cases := map[string]struct {
				key pdu.StateKey
				id  string
				err string
			}{
				"message":       {keyTopic, msg.EventID(), "not a state event"},
				"wrong key":     {keyTopic, f.id("IMB"), "maps to event"},
				"other room":    {keyTopic, foreign.EventID(), "is in room"},
				"other version": {keyTopic, old.EventID(), "not in room version"},
			}
			for name, c := range cases {
				s := copyState(root.state)
				s[c.key] = c.id
				_, err := Resolve(f.ver, []StateMap{a.state, s}, f.src)
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("%s: got %v, want an error with %q", name, err, c.err)
				}
			}
		})
	}
}

// In room versions 1 and 2 event IDs are chosen by their server, so auth
// events can refer to each other in a loop. Every walk refuses it.
func TestAuthCycles(t *testing.T) {
	root := initialRoom(t, "2")
	f := root.f
	create, alice := f.id("CREATE"), f.id("IMA")
	pl := func(id, cites, users string) *pdu.Event {
		p := pdu.ProtoEvent{Type: typePowerLevels, StateKey: new(string), Sender: user("alice"),
			RoomID: f.roomID, Content: []byte(users), AuthEvents: []string{create, alice, cites},
			PrevEvents: root.prev, Depth: root.depth + 1, OriginServerTS: 1, EventID: id}
		ev, err := p.Build(f.ver, testServer, "ed25519:1", testKey)
		if err != nil {
			t.Fatal(err)
		}
		f.add("", ev)
		return ev
	}
	// P1 and P2 cite each other.
	p1 := pl("$p1:"+testServer, "$p2:"+testServer, f.levels("alice", 100))
	p2 := pl("$p2:"+testServer, "$p1:"+testServer, f.levels("alice", 100, "bob", 1))
	// Q1 and Q2 cite each other; T cites Q1.
	pl("$q1:"+testServer, "$q2:"+testServer, f.levels("alice", 100))
	pl("$q2:"+testServer, "$q1:"+testServer, f.levels("alice", 100, "bob", 2))
	topicCiting := func(plID string) *pdu.Event {
		p := pdu.ProtoEvent{Type: "m.room.topic", StateKey: new(string), Sender: user("alice"),
			RoomID: f.roomID, Content: []byte(`{"topic":"x"}`), AuthEvents: []string{create, alice, plID},
			PrevEvents: root.prev, Depth: root.depth + 1, OriginServerTS: 2, EventID: "$t-" + plID[1:]}
		ev, err := p.Build(f.ver, testServer, "ed25519:1", testKey)
		if err != nil {
			t.Fatal(err)
		}
		f.add("", ev)
		return ev
	}
	tq := topicCiting("$q1:" + testServer)
	tp := topicCiting("$p1:" + testServer)
	t1 := root.fork()
	t1.topic("T1", "alice", "one")

	with := func(base StateMap, kv ...any) StateMap {
		s := copyState(base)
		for i := 0; i < len(kv); i += 2 {
			s[kv[i].(pdu.StateKey)] = kv[i+1].(string)
		}
		return s
	}
	cases := map[string][]StateMap{
		// Conflicted power levels: the power sort meets the loop.
		"power sort": {with(root.state, keyPL, p1.EventID()), with(root.state, keyPL, p2.EventID())},
		// The resolved power levels' mainline loops.
		"mainline": {with(root.state, keyPL, p1.EventID(), keyTopic, tp.EventID()),
			with(root.state, keyPL, p1.EventID(), keyTopic, f.id("T1"))},
		// A topic's power levels ancestry loops off the mainline.
		"mainline depth": {with(root.state, keyTopic, tq.EventID()), t1.state},
	}
	for name, sets := range cases {
		if _, err := Resolve(f.ver, sets, f.src); !errors.Is(err, errCycle) {
			t.Errorf("%s: got %v, want %v", name, err, errCycle)
		}
	}

	// The conflicted subgraph walk, on its own.
	r := newResolver(f.ver, f.src, 0)
	i, _, err := r.g.loadState(keyPL, p1.EventID())
	if err != nil {
		t.Fatal(err)
	}
	r.g.nodes[i].flags |= flagConflicted
	if _, err := r.conflictedSubgraph([]int32{i}); !errors.Is(err, errCycle) {
		t.Errorf("subgraph: got %v, want %v", err, errCycle)
	}
}

func TestPowerLevelValues(t *testing.T) {
	cases := map[string]int64{
		`50`: 50, `-7`: -7, `"50"`: 50, `" 42 "`: 42, `"+3"`: 3, `50.7`: 50, `-3.9`: -3,
		`"abc"`: 0, `true`: 0, `1e300`: 1<<63 - 1, `-1e300`: -1<<63 + 1, `-9223372036854775808`: -1<<63 + 1, `"\u0035"`: 5, `"bad`: 0,
	}
	for raw, want := range cases {
		if got := powerLevel([]byte(raw)); got != want {
			t.Errorf("powerLevel(%s) = %d, want %d", raw, got, want)
		}
	}
}
