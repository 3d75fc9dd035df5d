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
	for i, s := range stateSets {
		for k, id := range s {
			if id == "" {
				return nil, fmt.Errorf("stateres: state set %d maps (%q, %q) to an empty event ID", i, k.Type, k.StateKey)
			}
		}
	}
	switch len(stateSets) {
	case 0:
		return StateMap{}, nil
	case 1:
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
func separate(stateSets []StateMap, missingConflicts bool) (StateMap, map[pdu.StateKey][]string) {
	largest := 0
	for _, s := range stateSets {
		largest = max(largest, len(s))
	}
	unconflicted := make(StateMap, largest)
	conflicted := map[pdu.StateKey][]string{}
	for i, s := range stateSets {
		for k, id := range s {
			if _, done := unconflicted[k]; done {
				continue
			}
			if _, done := conflicted[k]; done {
				continue
			}
			// First time this key is seen: the sets before i lack it.
			ids := []string{id}
			lacking := i > 0
			for _, t := range stateSets[i+1:] {
				other, ok := t[k]
				if !ok {
					lacking = true
					continue
				}
				if !contains(ids, other) {
					ids = append(ids, other)
				}
			}
			if len(ids) == 1 && (!lacking || !missingConflicts) {
				unconflicted[k] = id
			} else {
				conflicted[k] = ids
			}
		}
	}
	return unconflicted, conflicted
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
