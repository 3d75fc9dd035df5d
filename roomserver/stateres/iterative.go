package stateres

import (
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// partialState is the state the iterative auth checks build: the events
// they accepted over a base state that is never copied (the unconflicted
// state in v2, nothing in v2.1).
type partialState struct {
	base StateMap
	over map[pdu.StateKey]int32
}

// stateEvent returns the event the partial state holds for key k.
func (r *resolver) stateEvent(ps *partialState, k pdu.StateKey) (int32, bool, error) {
	if i, ok := ps.over[k]; ok {
		return i, true, nil
	}
	id, ok := ps.base[k]
	if !ok {
		return 0, false, nil
	}
	i, _, err := r.g.loadState(k, id)
	if err != nil {
		return 0, false, err
	}
	return i, true, nil
}

// iterativeAuthChecks applies events, in order, to the partial state when
// the authorization rules allow them there (v2-state-res.md "Iterative auth
// checks"). A key the rules consult that the partial state lacks is taken
// from the event's own auth events, unless that auth event was rejected.
func (r *resolver) iterativeAuthChecks(ps *partialState, events []int32) error {
	g := r.g
	for _, i := range events {
		ev := g.nodes[i].ev
		lookup := func(k pdu.StateKey) *pdu.Event {
			if r.lookupErr != nil {
				return nil
			}
			s, ok, err := r.stateEvent(ps, k)
			if err != nil {
				r.lookupErr = err
				return nil
			}
			if ok {
				return g.nodes[s].ev
			}
			// The last match, as Synapse keys auth events by (type, state_key).
			var found *pdu.Event
			for _, a := range g.auth(i) {
				aev, err := g.load(a)
				if err != nil {
					r.lookupErr = err
					return nil
				}
				if aev.StateTuple() == k && !g.rejected(a) {
					found = aev
				}
			}
			return found
		}
		err := r.checker.Check(ev, lookup)
		if r.lookupErr != nil {
			return r.lookupErr
		}
		// Any refusal, whichever rule, leaves the event out of the state.
		if err == nil {
			ps.over[ev.StateTuple()] = i
		}
	}
	return nil
}
