package stateres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// The event types state resolution treats specially.
const (
	typeCreate      = "m.room.create"
	typePowerLevels = "m.room.power_levels"
	typeJoinRules   = "m.room.join_rules"
	typeMember      = "m.room.member"
)

var (
	createKey      = pdu.StateKey{Type: typeCreate}
	powerLevelsKey = pdu.StateKey{Type: typePowerLevels}
)

var errTooManyEvents = fmt.Errorf("stateres: resolution touches more than %d events", MaxEvents)

// graph is the part of the auth DAG one resolution has looked at. Event IDs
// are interned to int32 node numbers so that the walks and sorts work on
// slices instead of string-keyed maps; a graph lives for one resolution only.
type graph struct {
	ver    *pdu.RoomVersion
	src    EventSource
	rej    RejectionSource // nil when the source knows no rejections
	roomID string          // the room of the first event loaded
	// createID is the create event of a room version 12 room: roomID with
	// "$" for "!".
	createID string

	index map[string]int32
	nodes []node
	edges []int32 // auth edges of all loaded nodes, node.edges[0]..[1] index it
}

// node is one event. The fields after ev are scratch space for the
// algorithm's steps; each step documents the fields it uses.
type node struct {
	id    string
	ev    *pdu.Event // nil until loaded
	edges [2]int32   // auth events: g.edges[edges[0]:edges[1]], once loaded

	flags   uint8
	lastSet int32 // auth difference: 1 + the last state set whose walk reached this node
	sets    int32 // auth difference: how many state sets' full auth chains hold this node
	local   int32 // power sort: index in the sort's own arrays
	mdepth  int32 // mainline sort: mainline depth, mdepthUnknown until computed
}

const (
	flagCommon     uint8 = 1 << iota // in the full auth chain of every state set
	flagConflicted                   // in the conflicted state set
	flagFull                         // in the full conflicted set
	flagPowerSort                    // picked for the reverse topological power sort
	flagVisited                      // subgraph walk: visit started
	flagDone                         // subgraph walk: visit finished
	flagReaches                      // subgraph walk: reaches a conflicted event
)

const mdepthUnknown = -1

func newGraph(ver *pdu.RoomVersion, src EventSource, sizeHint int) *graph {
	g := &graph{
		ver:   ver,
		src:   src,
		index: make(map[string]int32, sizeHint),
		nodes: make([]node, 0, sizeHint),
	}
	g.rej, _ = src.(RejectionSource)
	return g
}

// intern returns the node number of an event ID, adding a node if needed.
func (g *graph) intern(id string) (int32, error) {
	if i, ok := g.index[id]; ok {
		return i, nil
	}
	if len(g.nodes) >= MaxEvents {
		return 0, errTooManyEvents
	}
	i := int32(len(g.nodes))
	g.nodes = append(g.nodes, node{id: id, mdepth: mdepthUnknown})
	g.index[id] = i
	return i, nil
}

// load fetches the event of node i (once) and interns its auth events.
func (g *graph) load(i int32) (*pdu.Event, error) {
	if ev := g.nodes[i].ev; ev != nil {
		return ev, nil
	}
	ev, err := g.fetch(g.nodes[i].id)
	if err != nil {
		return nil, err
	}
	start := int32(len(g.edges))
	err = g.eachAuthEvent(ev, func(j int32) { g.edges = append(g.edges, j) })
	if err != nil {
		return nil, err
	}
	n := &g.nodes[i]
	n.ev = ev
	n.edges = [2]int32{start, int32(len(g.edges))}
	return ev, nil
}

// fetch gets an event from the source and checks it belongs here.
func (g *graph) fetch(id string) (*pdu.Event, error) {
	ev, err := g.src.Event(id)
	if err != nil {
		return nil, fmt.Errorf("stateres: fetching event %s: %w", id, err)
	}
	if ev == nil {
		return nil, fmt.Errorf("stateres: fetching event %s: %w", id, &MissingEventError{ID: id})
	}
	if err := g.check(id, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// eachAuthEvent interns the auth events of ev and calls fn with each.
func (g *graph) eachAuthEvent(ev *pdu.Event, fn func(int32)) error {
	for _, a := range ev.AuthEventIDs() {
		j, err := g.intern(a)
		if err != nil {
			return err
		}
		fn(j)
	}
	// Room version 12 events never list the create event: the room ID names
	// it. It is an auth event all the same (Synapse's auth_event_ids() adds
	// it too), for the auth chains, the sender's power and the auth checks.
	if g.ver.CreateEventIsRoomID && !isCreateEvent(ev) {
		j, err := g.intern(g.createID)
		if err != nil {
			return err
		}
		fn(j)
	}
	return nil
}

// check refuses an event that cannot take part in this resolution.
func (g *graph) check(id string, ev *pdu.Event) error {
	if ev.EventID() != id {
		return fmt.Errorf("stateres: event source returned %s when asked for %s", ev.EventID(), id)
	}
	if v := ev.Version(); v != g.ver && (v == nil || v.ID != g.ver.ID) {
		return fmt.Errorf("stateres: event %s is not in room version %s", id, g.ver.ID)
	}
	if !ev.IsState() {
		return fmt.Errorf("stateres: event %s is not a state event", id)
	}
	room := ev.RoomID()
	if g.ver.CreateEventIsRoomID && !strings.HasPrefix(room, "!") {
		return fmt.Errorf("stateres: event %s has malformed room ID %q", id, room)
	}
	if g.roomID == "" {
		g.roomID = room
		if g.ver.CreateEventIsRoomID {
			g.createID = "$" + room[1:]
		}
	} else if room != g.roomID {
		return fmt.Errorf("stateres: event %s is in room %s, not %s", id, room, g.roomID)
	}
	return nil
}

// auth returns the auth events of a loaded node.
func (g *graph) auth(i int32) []int32 {
	e := g.nodes[i].edges
	return g.edges[e[0]:e[1]]
}

// loadState loads the event that a state map names for key k and checks that
// it is an event for that key.
func (g *graph) loadState(k pdu.StateKey, id string) (int32, *pdu.Event, error) {
	i, err := g.intern(id)
	if err != nil {
		return 0, nil, err
	}
	ev, err := g.load(i)
	if err != nil {
		return 0, nil, err
	}
	if err := checkKey(k, ev); err != nil {
		return 0, nil, err
	}
	return i, ev, nil
}

func checkKey(k pdu.StateKey, ev *pdu.Event) error {
	if ev.StateTuple() != k {
		return fmt.Errorf("stateres: state key (%q, %q) maps to event %s of (%q, %q)",
			k.Type, k.StateKey, ev.EventID(), ev.Type(), *ev.StateKey())
	}
	return nil
}

// rejected reports whether the source marked event i as rejected.
func (g *graph) rejected(i int32) bool {
	return g.rej != nil && g.rej.Rejected(g.nodes[i].id)
}

func isCreateEvent(ev *pdu.Event) bool {
	return ev.Type() == typeCreate && ev.StateKeyEquals("")
}

// errCycle is returned when auth events refer to each other in a loop. Event
// IDs that are hashes (room version 3 on) make that impossible; in versions
// 1 and 2 it is malformed input.
var errCycle = errors.New("stateres: auth events form a cycle")
