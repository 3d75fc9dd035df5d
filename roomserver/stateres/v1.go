package stateres

import (
	"bytes"
	"crypto/sha1"
	"sort"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// resolveV1 implements the state resolution of room version 1 (rooms/v1.md
// "State resolution"), with Synapse's reading of its vague points:
//   - Conflicts are resolved by class: the power levels, then every join
//     rules key, then every membership key, then every other key. All keys
//     of one class are resolved against the state as it stood after the
//     previous class, so the order of keys within a class does not matter.
//   - For the first three classes the candidates are taken in ascending
//     depth, then descending SHA-1 of the event ID; each is checked against
//     the state with the previous accepted candidate in place, and the last
//     one accepted before the first refusal wins.
//   - For other keys the candidate with the highest depth, then lowest SHA-1,
//     that the auth rules allow wins; if none is allowed, the one with the
//     lowest depth and highest SHA-1.
//   - The auth rules consult the resolved state only, never the event's own
//     auth events.
func resolveV1(ver *pdu.RoomVersion, stateSets []StateMap, src EventSource) (StateMap, error) {
	unconflicted, conflicted, err := separate(stateSets, false)
	if err != nil {
		return nil, err
	}
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	r := newResolver(ver, src, 4*len(conflicted))
	candidates := make(map[pdu.StateKey][]v1Candidate, len(conflicted))
	for k, ids := range conflicted {
		cs := make([]v1Candidate, 0, len(ids))
		for _, id := range ids {
			i, ev, err := r.g.loadState(k, id)
			if err != nil {
				return nil, err
			}
			cs = append(cs, v1Candidate{node: i, depth: ev.Depth(), sha: sha1.Sum([]byte(id))})
		}
		// Highest depth first, then lowest SHA-1.
		sort.Slice(cs, func(a, b int) bool {
			if cs[a].depth != cs[b].depth {
				return cs[a].depth > cs[b].depth
			}
			return bytes.Compare(cs[a].sha[:], cs[b].sha[:]) < 0
		})
		candidates[k] = cs
	}

	resolved := map[pdu.StateKey]int32{}
	view := &partialState{base: unconflicted, over: resolved}
	classes := []func(pdu.StateKey) bool{
		func(k pdu.StateKey) bool { return k == powerLevelsKey },
		func(k pdu.StateKey) bool { return k.Type == typeJoinRules },
		func(k pdu.StateKey) bool { return k.Type == typeMember },
	}
	done := map[pdu.StateKey]bool{}
	for _, inClass := range classes {
		winners := map[pdu.StateKey]int32{}
		for k, cs := range candidates {
			if !inClass(k) {
				continue
			}
			w, err := r.v1AuthEvents(view, k, cs)
			if err != nil {
				return nil, err
			}
			winners[k] = w
			done[k] = true
		}
		for k, w := range winners {
			resolved[k] = w
		}
	}
	winners := map[pdu.StateKey]int32{}
	for k, cs := range candidates {
		if done[k] {
			continue
		}
		w, err := r.v1Normal(view, cs)
		if err != nil {
			return nil, err
		}
		winners[k] = w
	}
	for k, w := range winners {
		resolved[k] = w
	}

	for k, i := range resolved {
		unconflicted[k] = r.g.nodes[i].id
	}
	return unconflicted, nil
}

type v1Candidate struct {
	node  int32
	depth int64
	sha   [sha1.Size]byte
}

// v1AuthEvents resolves a conflict between power levels, join rules or
// membership events; cs is sorted highest depth first.
func (r *resolver) v1AuthEvents(view *partialState, k pdu.StateKey, cs []v1Candidate) (int32, error) {
	prev := cs[len(cs)-1].node
	for c := len(cs) - 2; c >= 0; c-- {
		ok, err := r.v1Allowed(view, cs[c].node, k, prev)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		prev = cs[c].node
	}
	return prev, nil
}

// v1Normal resolves a conflict between other events; cs is sorted highest
// depth first.
func (r *resolver) v1Normal(view *partialState, cs []v1Candidate) (int32, error) {
	for _, c := range cs {
		ok, err := r.v1Allowed(view, c.node, pdu.StateKey{}, -1)
		if err != nil {
			return 0, err
		}
		if ok {
			return c.node, nil
		}
	}
	return cs[len(cs)-1].node, nil
}

// v1Allowed checks event i against the view, with key k replaced by event
// prev when prev >= 0.
func (r *resolver) v1Allowed(view *partialState, i int32, k pdu.StateKey, prev int32) (bool, error) {
	g := r.g
	lookup := func(want pdu.StateKey) *pdu.Event {
		if prev >= 0 && want == k {
			return g.nodes[prev].ev
		}
		if r.lookupErr != nil {
			return nil
		}
		s, ok, err := r.stateEvent(view, want)
		if err != nil {
			r.lookupErr = err
		}
		if !ok || err != nil {
			return nil
		}
		return g.nodes[s].ev
	}
	err := r.checker.Check(g.nodes[i].ev, lookup)
	if r.lookupErr != nil {
		return false, r.lookupErr
	}
	return err == nil, nil
}
