package stateres

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// isPowerEvent reports whether ev is a power event (v2-state-res.md "Power
// events"): power levels, join rules, or a kick or ban. Like Synapse, the
// create event counts too.
func isPowerEvent(ev *pdu.Event) bool {
	switch ev.Type() {
	case typePowerLevels, typeJoinRules, typeCreate:
		return ev.StateKeyEquals("")
	case typeMember:
		m := ev.Membership()
		return (m == "leave" || m == "ban") && !ev.StateKeyEquals(ev.Sender())
	}
	return false
}

// creatorPower ranks a room version 12 creator above any power level a
// power levels event can state.
const creatorPower = math.MaxInt64

// senderPower returns the power level of the sender of event i "when
// looking at their respective auth_events", as Synapse reads it: the
// sender's entry in the power levels event among the auth events, else
// users_default, else 0; with no power levels event, 100 for the room
// creator and 0 for anyone else. In room version 12 the creators (sender of
// the create event and additional_creators) rank above everyone.
func (r *resolver) senderPower(i int32) (int64, error) {
	g := r.g
	ev := g.nodes[i].ev
	var pl, create int32 = -1, -1
	for _, a := range g.auth(i) {
		aev, err := g.load(a)
		if err != nil {
			return 0, err
		}
		switch aev.StateTuple() {
		case powerLevelsKey:
			pl = a
		case createKey:
			create = a
		}
	}
	sender := ev.Sender()
	if g.ver.PrivilegedCreators && create >= 0 && isCreator(g.nodes[create].ev, sender) {
		return creatorPower, nil
	}
	if pl < 0 {
		if create >= 0 && creatorOf(g.ver, g.nodes[create].ev) == sender {
			return 100, nil
		}
		return 0, nil
	}
	c := r.powerContent(pl)
	if level, ok := c.Users[sender]; ok && !isNull(level) {
		return powerLevel(level), nil
	}
	if len(c.UsersDefault) > 0 && !isNull(c.UsersDefault) {
		return powerLevel(c.UsersDefault), nil
	}
	return 0, nil
}

// powerContent is the part of m.room.power_levels content the sort reads.
type powerContent struct {
	Users        map[string]json.RawMessage `json:"users"`
	UsersDefault json.RawMessage            `json:"users_default"`
}

// powerContent parses (once per resolution) the content of power levels
// event i. Content the auth rules would refuse reads as empty.
func (r *resolver) powerContent(i int32) *powerContent {
	if c, ok := r.powerCache[i]; ok {
		return c
	}
	c := &powerContent{}
	if err := json.Unmarshal(r.g.nodes[i].ev.Content(), c); err != nil {
		c = &powerContent{}
	}
	r.powerCache[i] = c
	return c
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// powerLevel reads a power level value the way Synapse's int() does for the
// values an accepted event can hold: an integer, an integer in a string
// (room versions before 10), a float truncated toward zero. Anything else
// reads as 0. The result is at least math.MinInt64+1, so that the sort can
// negate it.
func powerLevel(raw json.RawMessage) int64 {
	return max(parseLevel(raw), math.MinInt64+1)
}

func parseLevel(raw json.RawMessage) int64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) {
		return 0
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// creatorOf returns the room creator named by a create event: content.creator
// before room version 11, the sender from 11 on.
func creatorOf(ver *pdu.RoomVersion, create *pdu.Event) string {
	if !ver.CreatorInContent {
		return create.Sender()
	}
	var c struct {
		Creator json.RawMessage `json:"creator"`
	}
	var s string
	if json.Unmarshal(create.Content(), &c) != nil || json.Unmarshal(c.Creator, &s) != nil {
		return ""
	}
	return s
}

// isCreator reports whether user is a room version 12 creator: the sender
// of the create event or one of its content.additional_creators.
func isCreator(create *pdu.Event, user string) bool {
	if create.Sender() == user {
		return true
	}
	var c struct {
		AdditionalCreators []json.RawMessage `json:"additional_creators"`
	}
	if json.Unmarshal(create.Content(), &c) != nil {
		return false
	}
	for _, raw := range c.AdditionalCreators {
		var s string
		if json.Unmarshal(raw, &s) == nil && s == user {
			return true
		}
	}
	return false
}
