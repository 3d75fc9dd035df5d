package stateres

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// The tests build real, signed events with pdu.ProtoEvent.Build and check
// each against its auth events with auth.Check, so every DAG they resolve is
// one a server could have accepted.

const testServer = "example.org"

var testKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

func user(name string) string { return "@" + name + ":" + testServer }

// fixture is one room: its events, by test name and by ID.
type fixture struct {
	tb      testing.TB
	ver     *pdu.RoomVersion
	roomID  string
	creator string
	// creators are the users with infinite power in room version 12.
	creators map[string]bool
	src      EventMap
	names    map[string]string // test name → event ID
	labels   map[string]string // event ID → test name
	ts       int64
	seq      int
	tag      int64 // tells this room's events from other rooms' in one test
}

// roomCount numbers the rooms the tests create, so that no two rooms share
// a room ID or event IDs.
var roomCount atomic.Int64

// branch is a line of the room's DAG: the state after its last event.
type branch struct {
	f     *fixture
	state StateMap
	prev  []string
	depth int64
}

// newRoom creates a room with alice as creator: m.room.create and alice's
// join, named "CREATE" and "IMA".
func newRoom(tb testing.TB, verID string) *branch {
	tb.Helper()
	return newRoomWith(tb, verID, "")
}

// newRoomWith is newRoom with extra members of the create event's content,
// e.g. `"additional_creators":["@bob:example.org"]`.
func newRoomWith(tb testing.TB, verID, extraCreateContent string) *branch {
	tb.Helper()
	ver, err := pdu.GetRoomVersion(verID)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{tb: tb, ver: ver, creator: user("alice"), src: EventMap{},
		names: map[string]string{}, labels: map[string]string{}}
	f.creators = map[string]bool{f.creator: ver.PrivilegedCreators}
	f.tag = roomCount.Add(1)
	f.ts = f.tag * 1_000_000
	if !ver.CreateEventIsRoomID {
		f.roomID = fmt.Sprintf("!room%d:%s", f.tag, testServer)
	}
	b := &branch{f: f, state: StateMap{}}
	content := fmt.Sprintf(`{"room_version":%q}`, ver.ID)
	if ver.CreatorInContent {
		content = fmt.Sprintf(`{"creator":%q,"room_version":%q}`, f.creator, ver.ID)
	}
	if extraCreateContent != "" {
		content = content[:len(content)-1] + "," + extraCreateContent + "}"
		var c struct {
			AdditionalCreators []string `json:"additional_creators"`
		}
		if err := json.Unmarshal([]byte(content), &c); err != nil {
			tb.Fatal(err)
		}
		for _, u := range c.AdditionalCreators {
			f.creators[u] = ver.PrivilegedCreators
		}
	}
	create := b.send("CREATE", typeCreate, "", "alice", content)
	if ver.CreateEventIsRoomID {
		f.roomID = "!" + strings.TrimPrefix(create.EventID(), "$")
	}
	b.send("IMA", typeMember, user("alice"), "alice", `{"membership":"join"}`)
	return b
}

// initialRoom is the room of Synapse's state resolution tests: alice
// creates it and is admin, the join rules are public, bob, charlie and zara
// joined.
func initialRoom(tb testing.TB, verID string) *branch {
	b := newRoom(tb, verID)
	b.send("IPOWER", typePowerLevels, "", "alice", b.f.levels("alice", 100))
	b.send("IJR", typeJoinRules, "", "alice", `{"join_rule":"public"}`)
	b.join("IMB", "bob")
	b.join("IMC", "charlie")
	b.join("IMZ", "zara")
	return b
}

// levels returns power levels content giving users (name, level, ...)
// their levels. Room version 12 creators may not be listed: their power is
// infinite anyway, so the creator is left out there.
func (f *fixture) levels(pairs ...any) string {
	users := map[string]int{}
	extra := ""
	for i := 0; i+1 < len(pairs); i += 2 {
		name := pairs[i].(string)
		if name == "events" {
			extra = pairs[i+1].(string)
			continue
		}
		if f.creators[user(name)] {
			continue
		}
		users[user(name)] = pairs[i+1].(int)
	}
	b, _ := json.Marshal(users)
	if extra != "" {
		return fmt.Sprintf(`{"users":%s,"events":%s}`, b, extra)
	}
	return fmt.Sprintf(`{"users":%s}`, b)
}

func (b *branch) fork() *branch {
	return &branch{f: b.f, state: copyState(b.state), prev: append([]string(nil), b.prev...), depth: b.depth}
}

func (b *branch) join(name, who string) *pdu.Event {
	return b.send(name, typeMember, user(who), who, `{"membership":"join"}`)
}

func (b *branch) member(name, sender, target, membership string) *pdu.Event {
	return b.send(name, typeMember, user(target), sender, fmt.Sprintf(`{"membership":%q}`, membership))
}

func (b *branch) topic(name, sender, topic string) *pdu.Event {
	return b.send(name, "m.room.topic", "", sender, fmt.Sprintf(`{"topic":%q}`, topic))
}

// send builds a state event on the branch and fails the test unless the
// auth rules allow it against its auth events.
func (b *branch) send(name, typ, stateKey, sender, content string) *pdu.Event {
	b.f.tb.Helper()
	ev, err := b.try(name, typ, &stateKey, sender, content)
	if err != nil {
		b.f.tb.Fatalf("%s: %v", name, err)
	}
	return ev
}

// message builds a non-state event; it moves the branch forward only.
func (b *branch) message(name, sender string) *pdu.Event {
	b.f.tb.Helper()
	ev, err := b.try(name, "m.room.message", nil, sender, `{"body":"hi","msgtype":"m.text"}`)
	if err != nil {
		b.f.tb.Fatalf("%s: %v", name, err)
	}
	return ev
}

// try builds an event citing the auth events the selection algorithm picks
// from the branch state and adds it to the branch if the auth rules allow it
// against them.
func (b *branch) try(name, typ string, stateKey *string, sender, content string) (*pdu.Event, error) {
	f := b.f
	sender = user(sender)
	var authIDs []string
	for _, k := range auth.SelectAuthEvents(f.ver, typ, stateKey, sender, []byte(content)) {
		if id, ok := b.state[k]; ok {
			authIDs = append(authIDs, id)
		}
	}
	ev := f.build(typ, stateKey, sender, content, authIDs, b.prev, b.depth+1)
	if err := auth.Check(ev, f.authLookup(ev)); err != nil {
		return nil, err
	}
	f.add(name, ev)
	b.prev = []string{ev.EventID()}
	b.depth++
	if ev.IsState() {
		b.state[ev.StateTuple()] = ev.EventID()
	}
	return ev, nil
}

// build makes a signed event; in room versions 1 and 2 it names it.
func (f *fixture) build(typ string, stateKey *string, sender, content string, authIDs, prev []string, depth int64) *pdu.Event {
	f.ts++
	p := pdu.ProtoEvent{Type: typ, StateKey: stateKey, Sender: sender, RoomID: f.roomID,
		Content: json.RawMessage(content), PrevEvents: prev, AuthEvents: authIDs,
		Depth: depth, OriginServerTS: f.ts}
	if f.ver.EventIDs == pdu.EventIDOpaque {
		f.seq++
		p.EventID = fmt.Sprintf("$r%de%d:%s", f.tag, f.seq, testServer)
	}
	ev, err := p.Build(f.ver, testServer, "ed25519:1", testKey)
	if err != nil {
		f.tb.Fatalf("building %s event: %v", typ, err)
	}
	return ev
}

func (f *fixture) add(name string, ev *pdu.Event) {
	f.src.Add(ev)
	if name != "" {
		if _, dup := f.names[name]; dup {
			f.tb.Fatalf("event name %s used twice", name)
		}
		f.names[name] = ev.EventID()
		f.labels[ev.EventID()] = name
	}
}

// authLookup is the state an event's auth events form.
func (f *fixture) authLookup(ev *pdu.Event) auth.StateLookup {
	m := map[pdu.StateKey]*pdu.Event{}
	for _, id := range ev.AuthEventIDs() {
		if a := f.src[id]; a != nil {
			m[a.StateTuple()] = a
		}
	}
	if f.ver.CreateEventIsRoomID {
		if c := f.src["$"+strings.TrimPrefix(f.roomID, "!")]; c != nil {
			m[createKey] = c
		}
	}
	return func(k pdu.StateKey) *pdu.Event { return m[k] }
}

// id returns the event ID of a named event.
func (f *fixture) id(name string) string {
	f.tb.Helper()
	id, ok := f.names[name]
	if !ok {
		f.tb.Fatalf("no event named %s", name)
	}
	return id
}

// merge resolves the branches' states and continues from all their tips.
func merge(branches ...*branch) *branch {
	f := branches[0].f
	f.tb.Helper()
	sets := make([]StateMap, len(branches))
	m := &branch{f: f}
	for i, b := range branches {
		sets[i] = b.state
		m.prev = append(m.prev, b.prev...)
		m.depth = max(m.depth, b.depth)
	}
	got, err := Resolve(f.ver, sets, f.src)
	if err != nil {
		f.tb.Fatalf("merge: %v", err)
	}
	m.state = got
	return m
}

// resolve resolves the branches' states.
func resolve(branches ...*branch) StateMap {
	f := branches[0].f
	f.tb.Helper()
	sets := make([]StateMap, len(branches))
	for i, b := range branches {
		sets[i] = b.state
	}
	got, err := Resolve(f.ver, sets, f.src)
	if err != nil {
		f.tb.Fatalf("Resolve: %v", err)
	}
	return got
}

// want is an expected entry of a resolved state: the named event at key,
// or "" for no entry.
type want struct {
	key  pdu.StateKey
	name string
}

var (
	keyPL    = pdu.StateKey{Type: typePowerLevels}
	keyJR    = pdu.StateKey{Type: typeJoinRules}
	keyTopic = pdu.StateKey{Type: "m.room.topic"}
)

func keyMember(name string) pdu.StateKey { return pdu.StateKey{Type: typeMember, StateKey: user(name)} }

func (f *fixture) check(t *testing.T, got StateMap, wants ...want) {
	t.Helper()
	for _, w := range wants {
		id, ok := got[w.key]
		switch {
		case w.name == "" && ok:
			t.Errorf("%v: got %s, want no entry", w.key, f.label(id))
		case w.name != "" && id != f.id(w.name):
			t.Errorf("%v: got %s, want %s", w.key, f.label(id), w.name)
		}
	}
}

func (f *fixture) label(id string) string {
	if id == "" {
		return "no entry"
	}
	if n, ok := f.labels[id]; ok {
		return n
	}
	return id
}

// stateEqual reports whether two states are the same map.
func stateEqual(a, b StateMap) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
