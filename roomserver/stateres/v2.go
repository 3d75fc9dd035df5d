package stateres

import (
	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// resolveV2 implements state resolution v2 (room versions 2–11) and v2.1
// (room version 12), rooms/fragments/v2-state-res.md and rooms/v12.md.
//
// Where this follows Synapse rather than the letter of the spec (each
// choice keeps us agreeing with the servers most rooms run on):
//   - The full auth chain of a state set includes the set's own events, as
//     Synapse's get_auth_chain_difference computes it. It only changes which
//     unconflicted events count as auth difference.
//   - m.room.create counts as a power event.
//   - The events picked with a power event are found by walking auth events
//     that are in the full conflicted set only.
//   - The sender's power level for the power ordering is read from the
//     power levels event in the event's auth events; in room version 12 the
//     room's creators rank above every power level.
//
// Where the spec is clear and Synapse knowingly differs, this follows the
// spec: an event that was rejected by the state before it is replayed like
// any other and may enter the resolved state (Synapse skips it, a deviation
// its code marks as a TODO); only as a substitute auth event is a rejected
// event refused.
func resolveV2(ver *pdu.RoomVersion, stateSets []StateMap, src EventSource) (StateMap, error) {
	unconflicted, conflicted, err := separate(stateSets, true)
	if err != nil {
		return nil, err
	}
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	r := newResolver(ver, src, 64+16*len(conflicted))
	g := r.g

	// The conflicted state set, and which of its events each state set holds.
	var conflictedEvents []int32
	for k, ids := range conflicted {
		for _, id := range ids {
			i, _, err := g.loadState(k, id)
			if err != nil {
				return nil, err
			}
			if g.nodes[i].flags&flagConflicted == 0 {
				g.nodes[i].flags |= flagConflicted
				conflictedEvents = append(conflictedEvents, i)
			}
		}
	}
	perSet := make([][]int32, len(stateSets))
	for si, s := range stateSets {
		for k := range conflicted {
			if id, ok := s[k]; ok {
				perSet[si] = append(perSet[si], g.index[id])
			}
		}
	}

	// The full conflicted set.
	diff, err := r.authDifference(unconflicted, perSet)
	if err != nil {
		return nil, err
	}
	full := make([]int32, 0, len(conflictedEvents)+len(diff))
	addFull := func(i int32) {
		if g.nodes[i].flags&flagFull == 0 {
			g.nodes[i].flags |= flagFull
			full = append(full, i)
		}
	}
	for _, i := range conflictedEvents {
		addFull(i)
	}
	for _, i := range diff {
		addFull(i)
	}
	if ver.StateRes == pdu.StateResV21 {
		sub, err := r.conflictedSubgraph(conflictedEvents)
		if err != nil {
			return nil, err
		}
		for _, i := range sub {
			addFull(i)
		}
	}

	// Step 1: the power events and the part of their auth chains in the full
	// conflicted set, in reverse topological power ordering.
	var power []int32
	for _, i := range full {
		ev, err := g.load(i)
		if err != nil {
			return nil, err
		}
		if isPowerEvent(ev) {
			power = append(power, i)
		}
	}
	sortedPower, err := r.powerSort(power)
	if err != nil {
		return nil, err
	}

	// Step 2: iterative auth checks from the unconflicted state (v2) or
	// from the empty state (v2.1).
	ps := &partialState{over: make(map[pdu.StateKey]int32, len(full))}
	if ver.StateRes == pdu.StateResV2 {
		ps.base = unconflicted
	}
	if err := r.iterativeAuthChecks(ps, sortedPower); err != nil {
		return nil, err
	}

	// Step 3: the other events in mainline order of the resolved power levels.
	var rest []int32
	for _, i := range full {
		if g.nodes[i].flags&flagPowerSort == 0 {
			rest = append(rest, i)
		}
	}
	pl, hasPL, err := r.stateEvent(ps, powerLevelsKey)
	if err != nil {
		return nil, err
	}
	if err := r.mainlineSort(rest, pl, hasPL); err != nil {
		return nil, err
	}

	// Step 4: iterative auth checks of those on the partially resolved state.
	if err := r.iterativeAuthChecks(ps, rest); err != nil {
		return nil, err
	}

	// Step 5: the unconflicted state wins over whatever was resolved.
	for k, i := range ps.over {
		if _, ok := unconflicted[k]; !ok {
			unconflicted[k] = g.nodes[i].id
		}
	}
	return unconflicted, nil
}

// resolver holds the state of one resolution.
type resolver struct {
	g *graph
	// lookupErr is the first error met while answering a StateLookup; the
	// lookup itself can only answer "absent".
	lookupErr error
	// powerCache holds parsed power levels content by node.
	powerCache map[int32]*powerContent
	// checker applies the auth rules, reusing parsed power levels.
	checker auth.Checker
}

func newResolver(ver *pdu.RoomVersion, src EventSource, sizeHint int) *resolver {
	return &resolver{g: newGraph(ver, src, sizeHint), powerCache: map[int32]*powerContent{}}
}
