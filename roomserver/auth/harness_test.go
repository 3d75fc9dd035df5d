package auth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// Users of the test rooms. alice creates every room; a.test is her server.
const (
	alice = "@alice:a.test"
	bob   = "@bob:b.test"
	carol = "@carol:a.test"
	dave  = "@dave:c.test"
	erin  = "@erin:b.test"
)

const testKeyID = "ed25519:1"

// keyFor returns a fixed signing key per server name.
func keyFor(server string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("myelin auth test " + server))
	return ed25519.NewKeyFromSeed(seed[:])
}

func domain(id string) string { d, _ := domainOf(id); return d }

func sp(s string) *string { return &s }

// version returns the room version with the number n.
func version(t testing.TB, n int) *pdu.RoomVersion {
	t.Helper()
	v, err := pdu.GetRoomVersion(strconv.Itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// room is a test room: a state map built from real, signed events.
type room struct {
	t      testing.TB
	ver    *pdu.RoomVersion
	id     string
	create *pdu.Event
	state  map[pdu.StateKey]*pdu.Event
	prev   []string
	depth  int64
	n      int
}

// newRoom creates a room of version n with alice's create event (with the
// extra create content fields, a JSON object body without braces) and,
// unless noJoin, alice's first join.
func newRoom(t testing.TB, n int, extraCreate string, noJoin bool) *room {
	t.Helper()
	r := &room{t: t, ver: version(t, n), state: map[pdu.StateKey]*pdu.Event{}}
	content := `"room_version":"` + r.ver.ID + `"`
	if r.ver.CreatorInContent {
		content += `,"creator":"` + alice + `"`
	}
	if extraCreate != "" {
		content += "," + extraCreate
	}
	if !r.ver.CreateEventIsRoomID {
		// Rooms with different create contents get different IDs.
		sum := sha256.Sum256([]byte(extraCreate))
		r.id = fmt.Sprintf("!room%x:a.test", sum[:4])
	}
	r.create = r.event(alice, typeCreate, sp(""), "{"+content+"}")
	if r.ver.CreateEventIsRoomID {
		r.id = pdu.RoomIDFromCreateEventID(r.create.EventID())
	}
	r.mustAllow(r.create)
	if !noJoin {
		r.mustAllow(r.member(alice, alice, `{"membership":"join"}`))
	}
	return r
}

// event builds a signed event on top of the room, citing the auth events
// the selection algorithm picks from the current state.
func (r *room) event(sender, evType string, stateKey *string, content string) *pdu.Event {
	r.t.Helper()
	p := pdu.ProtoEvent{
		Type: evType, StateKey: stateKey, Sender: sender, RoomID: r.id,
		Content: json.RawMessage(content), PrevEvents: r.prev, Depth: r.depth + 1,
		OriginServerTS: 1_700_000_000_000 + int64(r.n),
	}
	if evType == typeCreate && r.ver.CreateEventIsRoomID && stateKey != nil && *stateKey == "" {
		p.RoomID = ""
	}
	for _, k := range SelectAuthEvents(r.ver, evType, stateKey, sender, []byte(content)) {
		if e := r.state[k]; e != nil {
			p.AuthEvents = append(p.AuthEvents, e.EventID())
		}
	}
	r.n++
	if r.ver.EventIDs == pdu.EventIDOpaque {
		p.EventID = fmt.Sprintf("$e%d:%s", r.n, domain(sender))
	}
	ev, err := p.Build(r.ver, domain(sender), testKeyID, keyFor(domain(sender)))
	if err != nil {
		r.t.Fatalf("building %s %s: %v", evType, content, err)
	}
	return ev
}

func (r *room) member(sender, target, content string) *pdu.Event {
	return r.event(sender, typeMember, sp(target), content)
}

func (r *room) lookup(k pdu.StateKey) *pdu.Event { return r.state[k] }

// authEvents returns the events ev cites, plus the create event in v12.
func (r *room) authEvents(ev *pdu.Event) []*pdu.Event {
	var out []*pdu.Event
	byID := map[string]*pdu.Event{r.create.EventID(): r.create}
	for _, e := range r.state {
		byID[e.EventID()] = e
	}
	for _, id := range ev.AuthEventIDs() {
		if e := byID[id]; e != nil {
			out = append(out, e)
		}
	}
	if r.ver.CreateEventIsRoomID {
		out = append(out, r.create)
	}
	return out
}

// check runs Check against the room state and CheckAuthEvents against the
// event's auth events. Both must agree: the rules only read the state the
// selection algorithm picks.
func (r *room) check(ev *pdu.Event) error {
	r.t.Helper()
	err := Check(ev, r.lookup)
	err2 := CheckAuthEvents(ev, r.authEvents(ev))
	if (err == nil) != (err2 == nil) {
		r.t.Errorf("Check says %v but CheckAuthEvents says %v", err, err2)
	}
	if err != nil {
		var na *NotAllowedError
		if !errors.As(err, &na) {
			r.t.Errorf("error %v is not a *NotAllowedError", err)
		}
	}
	return err
}

// apply puts the event in the state without checking it.
func (r *room) apply(ev *pdu.Event) {
	if ev.IsState() {
		r.state[ev.StateTuple()] = ev
	}
	r.prev = []string{ev.EventID()}
	r.depth++
}

func (r *room) mustAllow(ev *pdu.Event) {
	r.t.Helper()
	if err := r.check(ev); err != nil {
		r.t.Fatalf("%s %s: %v", ev.Type(), ev.Content(), err)
	}
	r.apply(ev)
}

// set puts a member event with the membership into the state, sent by the
// user themself (join, leave, knock) or by alice, without checking it.
func (r *room) set(user, membership string) {
	sender := user
	if membership == membershipInvite || membership == membershipBan {
		sender = alice
	}
	r.apply(r.member(sender, user, `{"membership":"`+membership+`"}`))
}

// powerLevels puts a power levels event by alice with the content into the
// state without checking it.
func (r *room) powerLevels(content string) {
	r.apply(r.event(alice, typePowerLevels, sp(""), content))
}

// adminPL is a power levels content giving alice 100 (where creators are not
// privileged) and the users the levels given.
func (r *room) adminPL(rest string, users ...string) string {
	var u []string
	if !r.ver.PrivilegedCreators {
		u = append(u, `"`+alice+`":100`)
	}
	u = append(u, users...)
	c := `{"users":{` + strings.Join(u, ",") + `}`
	if rest != "" {
		c += "," + rest
	}
	return c + "}"
}

func (r *room) joinRule(rule string) {
	r.apply(r.event(alice, typeJoinRules, sp(""), `{"join_rule":"`+rule+`"}`))
}

// ruleCase is one table test of the rules, run in versions from..to.
type ruleCase struct {
	name     string
	from, to int
	setup    func(r *room)
	ev       func(r *room) *pdu.Event
	want     string // "" when allowed, else a substring of the error
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		from, to := c.from, c.to
		if from == 0 {
			from = 1
		}
		if to == 0 {
			to = 12
		}
		for n := from; n <= to; n++ {
			t.Run(fmt.Sprintf("%s/v%d", c.name, n), func(t *testing.T) {
				r := newRoom(t, n, "", false)
				if c.setup != nil {
					c.setup(r)
				}
				err := r.check(c.ev(r))
				switch {
				case c.want == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case c.want != "" && err == nil:
					t.Fatalf("allowed, want error containing %q", c.want)
				case c.want != "" && !strings.Contains(err.Error(), c.want):
					t.Fatalf("error %q, want it to contain %q", err, c.want)
				}
			})
		}
	}
}
