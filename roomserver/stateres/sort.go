package stateres

import (
	"sort"
)

// powerSort picks the power events and the events of their auth chains that
// are in the full conflicted set, and returns them in reverse topological
// power ordering (v2-state-res.md step 1): Kahn's algorithm over the auth
// DAG, oldest first, choosing among the ready events the one whose sender
// has the greatest power, then the smallest origin_server_ts, then the
// smallest event ID.
//
// It marks the picked events with flagPowerSort and uses node.local.
func (r *resolver) powerSort(power []int32) ([]int32, error) {
	g := r.g
	var picked []int32
	stack := make([]int32, 0, len(power))
	for _, i := range power {
		if g.nodes[i].flags&flagPowerSort == 0 {
			g.nodes[i].flags |= flagPowerSort
			stack = append(stack, i)
		}
	}
	// Like Synapse, walk only through auth events in the full conflicted set.
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		picked = append(picked, i)
		for _, a := range g.auth(i) {
			if f := g.nodes[a].flags; f&flagFull != 0 && f&flagPowerSort == 0 {
				g.nodes[a].flags |= flagPowerSort
				stack = append(stack, a)
			}
		}
	}
	n := len(picked)
	if n == 0 {
		return nil, nil
	}

	keys := make([]sortKey, n)
	for li, i := range picked {
		g.nodes[i].local = int32(li)
		pl, err := r.senderPower(i)
		if err != nil {
			return nil, err
		}
		ev := g.nodes[i].ev
		keys[li] = sortKey{primary: -pl, ts: ev.OriginServerTS(), id: g.nodes[i].id}
	}

	// outdeg[x]: distinct picked auth events of x not yet output.
	// parents[a]: the picked events citing a.
	outdeg := make([]int32, n)
	parents := make([][]int32, n)
	seen := make([]int32, n) // 1 + the local index of the last event whose edges were counted
	for li, i := range picked {
		for _, a := range g.auth(i) {
			if g.nodes[a].flags&flagPowerSort == 0 {
				continue
			}
			la := g.nodes[a].local
			if seen[la] == int32(li)+1 {
				continue // the same auth event listed twice
			}
			seen[la] = int32(li) + 1
			outdeg[li]++
			parents[la] = append(parents[la], int32(li))
		}
	}

	h := keyHeap{keys: keys}
	for li := range picked {
		if outdeg[li] == 0 {
			h.push(int32(li))
		}
	}
	out := make([]int32, 0, n)
	for h.len() > 0 {
		li := h.pop()
		out = append(out, picked[li])
		for _, p := range parents[li] {
			outdeg[p]--
			if outdeg[p] == 0 {
				h.push(p)
			}
		}
	}
	if len(out) != n {
		return nil, errCycle
	}
	return out, nil
}

// sortKey orders events: smaller primary first, then smaller
// origin_server_ts, then smaller event ID. Event IDs are unique, so the
// order is total and the sorts do not depend on the input order.
type sortKey struct {
	primary int64
	ts      int64
	id      string
}

func (a *sortKey) less(b *sortKey) bool {
	if a.primary != b.primary {
		return a.primary < b.primary
	}
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	return a.id < b.id
}

// keyHeap is a binary min-heap of indexes into keys.
type keyHeap struct {
	keys  []sortKey
	items []int32
}

func (h *keyHeap) len() int { return len(h.items) }

func (h *keyHeap) lessAt(i, j int) bool { return h.keys[h.items[i]].less(&h.keys[h.items[j]]) }

func (h *keyHeap) push(x int32) {
	h.items = append(h.items, x)
	for i := len(h.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.lessAt(i, p) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *keyHeap) pop() int32 {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		l, rt, m := 2*i+1, 2*i+2, i
		if l < last && h.lessAt(l, m) {
			m = l
		}
		if rt < last && h.lessAt(rt, m) {
			m = rt
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// mainlineSort sorts events in place by the mainline ordering based on the
// power levels event pl (v2-state-res.md "Mainline ordering"): events whose
// power levels ancestry meets the mainline of pl further back come first,
// then smaller origin_server_ts, then smaller event ID. hasPL false means
// there is no power levels event in the partial state: the mainline is
// empty and every event is at the same position.
//
// It uses node.mdepth: the depth of a mainline event counted from the oldest
// (1), and for other power levels events the depth of the first mainline
// event in their power levels ancestry (0 for none), memoised.
func (r *resolver) mainlineSort(events []int32, pl int32, hasPL bool) error {
	if len(events) == 0 {
		return nil
	}
	g := r.g
	if hasPL {
		var mainline []int32
		for p, ok := pl, true; ok; {
			if len(mainline) > len(g.nodes) {
				return errCycle
			}
			mainline = append(mainline, p)
			var err error
			if p, ok, err = r.powerLevelsAuthEvent(p); err != nil {
				return err
			}
		}
		for d, p := range mainline {
			g.nodes[p].mdepth = int32(len(mainline) - d)
		}
	}
	keys := make([]sortKey, len(events))
	for k, i := range events {
		depth, err := r.mainlineDepth(i)
		if err != nil {
			return err
		}
		keys[k] = sortKey{primary: int64(depth), ts: g.nodes[i].ev.OriginServerTS(), id: g.nodes[i].id}
	}
	sort.Sort(byKey{events, keys})
	return nil
}

type byKey struct {
	ids  []int32
	keys []sortKey
}

func (s byKey) Len() int           { return len(s.ids) }
func (s byKey) Less(i, j int) bool { return s.keys[i].less(&s.keys[j]) }
func (s byKey) Swap(i, j int) {
	s.ids[i], s.ids[j] = s.ids[j], s.ids[i]
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
}

// mainlineDepth returns the mainline depth of event e: that of the first
// event of the chain e1, e2, … (each the power levels event among the
// previous one's auth events) that is on the mainline, or 0 if none is.
// The spec's mainline position i maps to depth len(mainline) - i, so a
// greater position is a smaller depth and sorts first either way.
func (r *resolver) mainlineDepth(e int32) (int32, error) {
	g := r.g
	p, ok, err := r.powerLevelsAuthEvent(e)
	if err != nil || !ok {
		return 0, err
	}
	var path []int32
	depth := int32(0)
	for {
		if d := g.nodes[p].mdepth; d != mdepthUnknown {
			depth = d
			break
		}
		if len(path) > len(g.nodes) {
			return 0, errCycle
		}
		path = append(path, p)
		if p, ok, err = r.powerLevelsAuthEvent(p); err != nil {
			return 0, err
		}
		if !ok {
			break
		}
	}
	for _, q := range path {
		g.nodes[q].mdepth = depth
	}
	return depth, nil
}

// powerLevelsAuthEvent returns the first m.room.power_levels event among the
// auth events of event i.
func (r *resolver) powerLevelsAuthEvent(i int32) (int32, bool, error) {
	g := r.g
	if _, err := g.load(i); err != nil {
		return 0, false, err
	}
	for _, a := range g.auth(i) {
		aev, err := g.load(a)
		if err != nil {
			return 0, false, err
		}
		if aev.StateTuple() == powerLevelsKey {
			return a, true, nil
		}
	}
	return 0, false, nil
}
