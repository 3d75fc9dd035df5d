package stateres

import (
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// StateMap is a room state: (event type, state key) → event ID.
type StateMap map[pdu.StateKey]string

// EventSource gives state resolution the events it needs: the events of the
// state sets and every event in their auth chains. It must return rejected
// events too: state resolution uses them like any other (v2-state-res.md
// "Rejected events").
type EventSource interface {
	// Event returns the event with the given ID. An unknown event is
	// reported as an error (ideally a *MissingEventError); Resolve then
	// fails with that error wrapped.
	Event(id string) (*pdu.Event, error)
}

// AuthChainSource is an optional interface of an EventSource backed by a store
// that indexes auth chains. When the source implements it, Resolve computes
// the auth difference from it instead of walking every event of the state
// sets' auth chains.
type AuthChainSource interface {
	// AuthChain returns the IDs of every event in the auth chain of any of
	// the given events: everything reachable from them through auth_events,
	// in any order, duplicates allowed. In room version 12 the create event
	// counts as an auth event of every other event of the room.
	AuthChain(ids []string) ([]string, error)
}

// RejectionSource is an optional interface of an EventSource that knows
// which events were rejected. Rejected events are never used as auth events
// during the iterative auth checks (v2-state-res.md "Rejected events"). A
// source without it is taken to hold no rejected events.
type RejectionSource interface {
	Rejected(id string) bool
}

// EventMap is an EventSource over events held in memory, keyed by event ID.
type EventMap map[string]*pdu.Event

// Event implements EventSource.
func (m EventMap) Event(id string) (*pdu.Event, error) {
	if ev, ok := m[id]; ok && ev != nil {
		return ev, nil
	}
	return nil, &MissingEventError{ID: id}
}

// Add stores events by their event ID.
func (m EventMap) Add(events ...*pdu.Event) {
	for _, ev := range events {
		m[ev.EventID()] = ev
	}
}

// MissingEventError reports an event that state resolution needed and the
// EventSource did not have. The caller may fetch it and resolve again.
type MissingEventError struct {
	ID string
}

func (e *MissingEventError) Error() string { return fmt.Sprintf("event %s not found", e.ID) }

// MaxEvents bounds how many distinct events one resolution may touch. A
// resolution over a 100,000 member room touches about 100,000; the bound only
// stops runaway input from exhausting memory.
const MaxEvents = 1 << 22
