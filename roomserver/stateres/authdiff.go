package stateres

import "fmt"

// authDifference returns the events that are in the full auth chain of some
// but not all of the state sets (v2-state-res.md "Auth difference").
//
// perSet[i] holds the conflicted events of state set i. The unconflicted
// events are in every set, so their full auth chains are common to all sets:
// they are walked once and marked common, and each set's own walk starts at
// its conflicted events and stops at common events. The cost is one visit
// per event of the unconflicted state's auth chains plus the conflict.
//
// The flags flagCommon, and the fields lastSet and sets, record the result.
func (r *resolver) authDifference(unconflicted StateMap, perSet [][]int32) ([]int32, error) {
	g := r.g
	if acs, ok := g.src.(AuthChainSource); ok {
		if err := r.countChainsFromSource(acs, unconflicted, perSet); err != nil {
			return nil, err
		}
	} else if err := r.countChainsByWalking(unconflicted, perSet); err != nil {
		return nil, err
	}
	var diff []int32
	k := int32(len(perSet))
	for i := range g.nodes {
		n := &g.nodes[i]
		if n.flags&flagCommon == 0 && n.sets > 0 && n.sets < k {
			diff = append(diff, int32(i))
		}
	}
	return diff, nil
}

func (r *resolver) countChainsByWalking(unconflicted StateMap, perSet [][]int32) error {
	g := r.g
	stack := make([]int32, 0, 256)
	markCommon := func(a int32) {
		if g.nodes[a].flags&flagCommon == 0 {
			g.nodes[a].flags |= flagCommon
			stack = append(stack, a)
		}
	}
	// The unconflicted events themselves are not interned (in a large room
	// they are most of the work): only their auth events are. One that the
	// walks below meet without it being marked here is recognised when it
	// is loaded.
	for k, id := range unconflicted {
		ev, err := g.fetch(id)
		if err != nil {
			return err
		}
		if err := checkKey(k, ev); err != nil {
			return err
		}
		if err := g.eachAuthEvent(ev, markCommon); err != nil {
			return err
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, err := g.load(i); err != nil {
			return err
		}
		for _, a := range g.auth(i) {
			markCommon(a)
		}
	}

	for si, seeds := range perSet {
		tag := int32(si + 1)
		for _, i := range seeds {
			if r.countVisit(i, tag) {
				stack = append(stack, i)
			}
		}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			ev, err := g.load(i)
			if err != nil {
				return err
			}
			if unconflicted[ev.StateTuple()] == g.nodes[i].id {
				// An unconflicted event: in every full auth chain, as is
				// its own auth chain, which the walk above marked.
				g.nodes[i].flags |= flagCommon
				continue
			}
			for _, a := range g.auth(i) {
				if r.countVisit(a, tag) {
					stack = append(stack, a)
				}
			}
		}
	}
	return nil
}

// countVisit counts node i as reached by the walk of state set tag-1 and
// reports whether the walk should continue through it.
func (r *resolver) countVisit(i, tag int32) bool {
	n := &r.g.nodes[i]
	if n.flags&flagCommon != 0 || n.lastSet == tag {
		return false
	}
	n.lastSet = tag
	n.sets++
	return true
}

func (r *resolver) countChainsFromSource(acs AuthChainSource, unconflicted StateMap, perSet [][]int32) error {
	g := r.g
	ids := make([]string, 0, len(unconflicted))
	for _, id := range unconflicted {
		ids = append(ids, id)
	}
	chain, err := acs.AuthChain(ids)
	if err != nil {
		return fmt.Errorf("stateres: auth chain of the unconflicted state: %w", err)
	}
	for _, list := range [][]string{ids, chain} {
		for _, id := range list {
			i, err := g.intern(id)
			if err != nil {
				return err
			}
			g.nodes[i].flags |= flagCommon
		}
	}
	for si, seeds := range perSet {
		tag := int32(si + 1)
		ids = ids[:0]
		for _, i := range seeds {
			ids = append(ids, g.nodes[i].id)
			r.countVisit(i, tag)
		}
		chain, err := acs.AuthChain(ids)
		if err != nil {
			return fmt.Errorf("stateres: auth chain of state set %d: %w", si, err)
		}
		for _, id := range chain {
			i, err := g.intern(id)
			if err != nil {
				return err
			}
			r.countVisit(i, tag)
		}
	}
	return nil
}

// conflictedSubgraph returns the events on auth_events paths between two
// events of the conflicted state set, endpoints included (rooms/v12.md
// "Conflicted state subgraph"): the events that are in the auth chain of a
// conflicted event and have a conflicted event in their own auth chain.
//
// One depth-first walk from the conflicted events decides, bottom up, which
// events reach a conflicted event; every event it visits other than the
// starting points is in the auth chain of a conflicted event. It uses the
// flags flagVisited, flagDone and flagReaches.
func (r *resolver) conflictedSubgraph(conflicted []int32) ([]int32, error) {
	g := r.g
	type frame struct{ n, next int32 }
	var stack []frame
	var out []int32
	for _, c := range conflicted {
		if g.nodes[c].flags&flagVisited != 0 {
			continue
		}
		g.nodes[c].flags |= flagVisited
		stack = append(stack, frame{n: c})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if _, err := g.load(top.n); err != nil {
				return nil, err
			}
			if auth := g.auth(top.n); int(top.next) < len(auth) {
				a := auth[top.next]
				top.next++
				switch f := g.nodes[a].flags; {
				case f&flagVisited == 0:
					g.nodes[a].flags |= flagVisited
					stack = append(stack, frame{n: a})
				case f&flagDone == 0:
					return nil, errCycle
				case f&flagReaches != 0:
					g.nodes[top.n].flags |= flagReaches
				}
				continue
			}
			n := top.n
			stack = stack[:len(stack)-1]
			if g.nodes[n].flags&flagConflicted != 0 {
				g.nodes[n].flags |= flagReaches
			}
			g.nodes[n].flags |= flagDone
			if g.nodes[n].flags&flagReaches != 0 {
				out = append(out, n)
				if len(stack) > 0 {
					g.nodes[stack[len(stack)-1].n].flags |= flagReaches
				}
			}
		}
	}
	return out, nil
}
