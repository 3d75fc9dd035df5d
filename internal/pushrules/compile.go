package pushrules

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"
)

// Compiled is a ruleset ready for evaluation: only enabled rules, paths in
// canonical form, patterns compiled, each rule's result prepared. It is
// immutable, so one value serves every goroutine and every user whose
// ruleset compiles to the same rules.
type Compiled struct {
	ordered   []*crule // override then content rules, in order
	room      map[string]*crule
	sender    map[string]*crule
	underride []*crule
	// ownerConds are the conditions that compare against the evaluating
	// user's ID; their answers for one user form the memo key.
	ownerConds []*ccond
	// usesDisplayName: some rule asks for the user's display name, so
	// results are not shared between users.
	usesDisplayName bool
}

type crule struct {
	conds   []ccond
	content *Glob // content rules: the pattern against content.body
	result  *Result
}

// Result is what the first matching rule says.
type Result struct {
	Kind   Kind
	RuleID string
	// Notify: the event is a notification for the user.
	Notify bool
	// Highlight: the highlight tweak is set (to true or with no value).
	Highlight bool
	// Actions and Tweaks (set_tweak name → value, true when it has none,
	// as push gateways get them) are shared: do not modify them.
	Actions []Action
	Tweaks  map[string]json.RawMessage
}

type condKind uint8

const (
	cNever condKind = iota // unknown kinds and bad parameters
	cMatch
	cPropIs
	cPropContains
	cDisplayName
	cMemberCount
	cSenderPerm
)

type ccond struct {
	kind  condKind
	key   string // canonical path
	glob  *Glob
	value scalar
	// owner: the pattern or value is the evaluating user's ID; ownerBit
	// is the condition's index in Compiled.ownerConds.
	owner    bool
	ownerBit uint8
	op       string // room_member_count
	n        int64
}

// maxOwnerConds bounds the owner conditions that make up a memo key (a
// uint64 of answers).
const maxOwnerConds = 64

// ownerRelative reports whether c names owner itself, so that a ruleset
// differing from another only there can share its compiled form. Patterns
// with wildcards and the content.body key keep their glob meaning.
func ownerRelative(c *Condition, owner string) bool {
	switch c.Kind {
	case CondEventMatch:
		return c.Pattern != nil && *c.Pattern == owner && !strings.ContainsAny(owner, "*?") &&
			canonicalPath(c.Key) != "content.body"
	case CondEventPropertyIs, CondEventPropertyContains:
		v, ok := parseScalar(c.Value)
		return ok && v.kind == kString && v.str == owner
	}
	return false
}

// compile compiles rs for owner; see Compiler.
func compile(rs *Ruleset, owner string) *Compiled {
	c := &Compiled{room: map[string]*crule{}, sender: map[string]*crule{}}
	for _, k := range Kinds {
		for _, r := range rs.Rules(k) {
			if !r.Enabled {
				continue
			}
			cr := &crule{result: newResult(k, r)}
			switch k {
			case Override, Underride:
				for i := range r.Conditions {
					cr.conds = append(cr.conds, c.compileCond(&r.Conditions[i], owner))
				}
			case Content:
				if r.Pattern == nil {
					continue
				}
				cr.content = CompileGlob(*r.Pattern, true)
			}
			switch k {
			case Override, Content:
				c.ordered = append(c.ordered, cr)
			case Room:
				if _, dup := c.room[r.RuleID]; !dup {
					c.room[r.RuleID] = cr
				}
			case Sender:
				// A rule about the owner's own messages never applies:
				// a user is not notified of what they send.
				if _, dup := c.sender[r.RuleID]; !dup && r.RuleID != owner {
					c.sender[r.RuleID] = cr
				}
			case Underride:
				c.underride = append(c.underride, cr)
			}
		}
	}
	// The owner conditions, pointing into the rules (whose slices no
	// longer grow).
	for _, list := range [][]*crule{c.ordered, c.underride} {
		for _, cr := range list {
			for i := range cr.conds {
				if cr.conds[i].owner {
					cr.conds[i].ownerBit = uint8(min(len(c.ownerConds), 255))
					c.ownerConds = append(c.ownerConds, &cr.conds[i])
				}
			}
		}
	}
	return c
}

func (c *Compiled) compileCond(cond *Condition, owner string) ccond {
	key := canonicalPath(cond.Key)
	switch cond.Kind {
	case CondEventMatch:
		if cond.Pattern == nil {
			return ccond{}
		}
		if ownerRelative(cond, owner) {
			return ccond{kind: cMatch, key: key, owner: true}
		}
		return ccond{kind: cMatch, key: key, glob: CompileGlob(*cond.Pattern, key == "content.body")}
	case CondEventPropertyIs, CondEventPropertyContains:
		kind := cPropIs
		if cond.Kind == CondEventPropertyContains {
			kind = cPropContains
		}
		v, ok := parseScalar(cond.Value)
		if !ok {
			return ccond{}
		}
		if ownerRelative(cond, owner) {
			return ccond{kind: kind, key: key, owner: true}
		}
		return ccond{kind: kind, key: key, value: v}
	case CondContainsDisplayName:
		c.usesDisplayName = true
		return ccond{kind: cDisplayName}
	case CondRoomMemberCount:
		op, n, ok := parseMemberCount(cond.Is)
		if !ok {
			return ccond{}
		}
		return ccond{kind: cMemberCount, op: op, n: n}
	case CondSenderNotificationPerm:
		return ccond{kind: cSenderPerm, key: cond.Key}
	}
	return ccond{}
}

func newResult(k Kind, r *Rule) *Result {
	res := &Result{Kind: k, RuleID: r.RuleID, Actions: r.Actions, Tweaks: map[string]json.RawMessage{}}
	for _, a := range r.Actions {
		switch a.Name {
		case ActionNotify:
			res.Notify = true
		case ActionSetTweak:
			v := a.Value
			if v == nil {
				v = json.RawMessage(`true`)
			}
			res.Tweaks[a.Tweak] = v
			if a.Tweak == "highlight" {
				res.Highlight = string(v) == "true"
			}
		}
	}
	return res
}

// Compiler compiles rulesets and shares the compiled form between users
// whose rulesets differ only in their own user ID. It is safe for
// concurrent use.
type Compiler struct {
	mu     sync.Mutex
	shared map[[32]byte]*Compiled
}

// maxShared bounds the distinct compiled rulesets the Compiler remembers;
// past it, it starts afresh (callers keep what they hold).
const maxShared = 50000

// NewCompiler returns an empty Compiler.
func NewCompiler() *Compiler { return &Compiler{shared: map[[32]byte]*Compiled{}} }

// Compile compiles owner's ruleset rs.
func (cp *Compiler) Compile(rs *Ruleset, owner string) *Compiled {
	key := shareKey(rs, owner)
	cp.mu.Lock()
	if c, ok := cp.shared[key]; ok {
		cp.mu.Unlock()
		return c
	}
	cp.mu.Unlock()
	c := compile(rs, owner)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if prev, ok := cp.shared[key]; ok {
		return prev
	}
	if len(cp.shared) >= maxShared {
		clear(cp.shared)
	}
	cp.shared[key] = c
	return c
}

// ownerMarker marks a condition about the owner in a share key. It is
// written in the "is" field, which the conditions concerned never have.
const ownerMarker = "\x00owner"

// shareKey hashes rs with the owner's ID replaced wherever compile treats
// it as "the owner": rulesets with equal keys compile to equal values.
func shareKey(rs *Ruleset, owner string) [32]byte {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, k := range Kinds {
		h.Write([]byte(k))
		for _, r := range rs.Rules(k) {
			if !r.Enabled || k == Sender && r.RuleID == owner {
				continue
			}
			c := *r
			if len(r.Conditions) > 0 {
				c.Conditions = make([]Condition, len(r.Conditions))
				for i, cond := range r.Conditions {
					if ownerRelative(&cond, owner) {
						cond = Condition{Kind: cond.Kind, Key: canonicalPath(cond.Key), Is: ownerMarker}
					}
					c.Conditions[i] = cond
				}
			}
			// The rule ID and default flag do not change evaluation,
			// except through the result, which carries them: keep them.
			_ = enc.Encode(&c)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
