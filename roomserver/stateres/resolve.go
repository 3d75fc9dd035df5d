package stateres

import (
	"errors"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Resolve returns the resolution of the given room states under the state
// resolution algorithm of room version ver. The state sets are not modified;
// the result is a new map and does not depend on the order of stateSets.
//
// Every event the algorithm needs must be available from src: the events
// named by the state sets (v2, v2.1: all of them, to walk their auth chains,
// unless src implements AuthChainSource; v1: the conflicted ones and the
// unconflicted ones the auth rules consult) and their auth events.
// A missing event fails the resolution with a wrapped *MissingEventError.
func Resolve(ver *pdu.RoomVersion, stateSets []StateMap, src EventSource) (StateMap, error) {
	if ver == nil {
		return nil, errors.New("stateres: no room version")
	}
	if src == nil {
		return nil, errors.New("stateres: no event source")
	}
	switch len(stateSets) {
	case 0:
		return StateMap{}, nil
	case 1:
		for k, id := range stateSets[0] {
			if id == "" {
				return nil, emptyIDError(k)
			}
		}
		return copyState(stateSets[0]), nil
	}
	switch ver.StateRes {
	case pdu.StateResV1:
		return resolveV1(ver, stateSets, src)
	case pdu.StateResV2, pdu.StateResV21:
		return resolveV2(ver, stateSets, src)
	default:
		return nil, fmt.Errorf("stateres: room version %s has unknown state resolution algorithm %d", ver.ID, ver.StateRes)
	}
}

func emptyIDError(k pdu.StateKey) error {
	return fmt.Errorf("stateres: a state set maps (%q, %q) to an empty event ID", k.Type, k.StateKey)
}

func copyState(s StateMap) StateMap {
	out := make(StateMap, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// separate splits state sets into the unconflicted state map and the
// conflicted keys with their distinct event IDs.
//
// missingConflicts says whether a key that some state sets lack is
// conflicted: yes in v2 ("present in every S_i with the same value"), no in
// v1, where the unconflicted state is the union of the states minus the keys
// given different events.
//
// Every entry of every set is looked at once, so separate also refuses
// empty event IDs.
func separate(stateSets []StateMap, missingConflicts bool) (StateMap, map[pdu.StateKey][]string, error) {
	largest := 0
	for _, s := range stateSets {
		largest = max(largest, len(s))
	}
	unconflicted := make(StateMap, largest)
	conflicted := map[pdu.StateKey][]string{}
	// seen[j] counts the keys of set j met while scanning earlier sets: when
	// it reaches len(set j), set j has no key of its own left to scan. For
	// forks of one room that is the common case, and it halves the work.
	seen := make([]int, len(stateSets))
	for i, s := range stateSets {
		if seen[i] == len(s) {
			continue
		}
	keys:
		for k, id := range s {
			// A key is decided when the first set holding it is scanned.
			for _, earlier := range stateSets[:i] {
				if _, ok := earlier[k]; ok {
					continue keys
				}
			}
			if id == "" {
				return nil, nil, emptyIDError(k)
			}
			lacking, differs := i > 0, false
			for j, t := range stateSets[i+1:] {
				other, ok := t[k]
				if ok {
					if other == "" {
						return nil, nil, emptyIDError(k)
					}
					seen[i+1+j]++
				}
				lacking = lacking || !ok
				differs = differs || (ok && other != id)
			}
			if !differs && (!lacking || !missingConflicts) {
				unconflicted[k] = id
				continue
			}
			ids := []string{id}
			for _, t := range stateSets[i+1:] {
				if other, ok := t[k]; ok && !contains(ids, other) {
					ids = append(ids, other)
				}
			}
			conflicted[k] = ids
		}
	}
	return unconflicted, conflicted, nil
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
