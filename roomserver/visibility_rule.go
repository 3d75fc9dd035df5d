package roomserver

// The history visibility rule (client-server-api "Room History
// Visibility", "Server behaviour"), with no I/O: the one place that decides
// who may see what. FilterVisible (visibility.go) feeds it from state
// snapshots, one event at a time; syncapi feeds it from one query per room
// for a whole page of events. Whether a user may see an event depends on
// the room state at that event:
//
//  1. history_visibility world_readable: allow;
//  2. the user's membership was join: allow;
//  3. shared, and the user is joined to the room now: allow. The spec says
//     "joined the room at any point after the event"; as Synapse does (it
//     treats a user who is no longer joined as peeking), a user who joined
//     and then left keeps only what rules 1, 2 and 4 give them, so that
//     after leaving they see neither what was sent after they left nor the
//     history from before their join ("After a user has left a room, they
//     may see any events which they were allowed to see before they left
//     the room, but no events received after they left");
//  4. the user's membership was invite and history_visibility invited:
//     allow;
//  5. otherwise deny.
//
// A missing or unknown history_visibility counts as shared. For
// m.room.history_visibility events, and for the user's own m.room.member
// events, the state before or the state after the event may allow.

import (
	"strings"

	"github.com/tidwall/gjson"
)

// VisibilityState is what the rule needs of the room state at an event.
type VisibilityState struct {
	// HistoryVisibility is the room's setting, as HistoryVisibilityOf
	// returns it ("" or an unknown value counts as shared).
	HistoryVisibility string
	// Membership is the user's membership ("" for none).
	Membership string
}

// Verdict is the rule's answer for one event, ordered from least to most
// permissive.
type Verdict uint8

const (
	// Denied: the user may not see the event.
	Denied Verdict = iota
	// IfJoinedNow: shared history, which the user may see only while
	// joined to the room (rule 3).
	IfJoinedNow
	// Allowed: the user may see the event whatever they do next.
	Allowed
)

// Allows resolves the verdict given whether the user is joined to the
// room now.
func (v Verdict) Allows(joinedNow bool) bool {
	return v == Allowed || v == IfJoinedNow && joinedNow
}

// HistoryVisibilityOf returns the setting of an m.room.history_visibility
// event (its whole JSON): "shared" for a missing, redacted or unknown
// value.
func HistoryVisibilityOf(eventJSON []byte) string {
	switch hv := gjson.GetBytes(eventJSON, "content.history_visibility").Str; hv {
	case "world_readable", "shared", "invited", "joined":
		return hv
	}
	return "shared"
}

// StateAfterCounts reports whether, for an event, the state after it may
// allow as well as the state before it: so for m.room.history_visibility
// events and for the user's own member events.
func StateAfterCounts(evType string, stateKey *string, userID string) bool {
	return stateKey != nil && (evType == "m.room.history_visibility" ||
		evType == "m.room.member" && *stateKey == userID)
}

// EventVisibility applies the rule to one event: before is the state
// before it, after the state after it when StateAfterCounts (nil
// otherwise).
func EventVisibility(before VisibilityState, after *VisibilityState) Verdict {
	v := visibilityAt(before)
	if after != nil {
		v = max(v, visibilityAt(*after))
	}
	return v
}

func visibilityAt(st VisibilityState) Verdict {
	if st.HistoryVisibility == "world_readable" || st.Membership == "join" {
		return Allowed
	}
	switch st.HistoryVisibility {
	case "joined":
		return Denied
	case "invited":
		if st.Membership == "invite" {
			return Allowed
		}
		return Denied
	}
	return IfJoinedNow // shared, missing or unknown
}

// The rule for servers. The spec has no text of its own for what another
// server may see of a room's history; this follows Synapse (its
// filter_events_for_server), in the same shape as the rule for users, with
// the server's users taken together:
//
//  1. world_readable: allow;
//  2. one of the server's users was joined at the event: allow;
//  3. invited, and one of the server's users was invited: allow;
//  4. joined or invited otherwise: deny;
//  5. shared (or missing or unknown): allow while the server has a user
//     joined to the room now (IfJoinedNow).

// ServerVisibilityState is what the server rule needs of the room state at
// an event.
type ServerVisibilityState struct {
	// HistoryVisibility as HistoryVisibilityOf returns it.
	HistoryVisibility string
	// Joined and Invited: whether one of the server's users had that
	// membership.
	Joined, Invited bool
}

// ServerEventVisibility applies the server rule to one event: before is the
// state before it, after the state after it when ServerStateAfterCounts
// (nil otherwise).
func ServerEventVisibility(before ServerVisibilityState, after *ServerVisibilityState) Verdict {
	v := serverVisibilityAt(before)
	if after != nil {
		v = max(v, serverVisibilityAt(*after))
	}
	return v
}

// ServerStateAfterCounts reports whether, for an event, the state after it
// may allow a server as well as the state before it: for
// m.room.history_visibility events and for member events of the server's
// users.
func ServerStateAfterCounts(evType string, stateKey *string, serverName string) bool {
	return stateKey != nil && (evType == "m.room.history_visibility" ||
		evType == "m.room.member" && UserServer(*stateKey) == serverName)
}

// UserServer returns the server name of a user ID (the part after the
// first colon), "" if it has none.
func UserServer(userID string) string {
	_, server, ok := strings.Cut(userID, ":")
	if !ok {
		return ""
	}
	return server
}

func serverVisibilityAt(st ServerVisibilityState) Verdict {
	if st.HistoryVisibility == "world_readable" || st.Joined {
		return Allowed
	}
	switch st.HistoryVisibility {
	case "joined":
		return Denied
	case "invited":
		if st.Invited {
			return Allowed
		}
		return Denied
	}
	return IfJoinedNow
}
