package roomserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Reads about rooms. They read committed data outside the committer, so
// they never wait for writes.

// StoredEvent is an event as the server holds it.
type StoredEvent struct {
	Event *pdu.Event
	// StreamPos is the event's position in the global stream; 0 when it is
	// not in the room's timeline (rejected, soft-failed, outlier).
	StreamPos int64
	RoomID    string
	// Redacted: a redaction was applied; Event is then the redacted form
	// and Unsigned holds redacted_because.
	Redacted   bool
	RedactedBy string
	Rejected   bool
	SoftFailed bool
	// Unsigned is the stored "unsigned" object (redacted_because), or nil.
	Unsigned json.RawMessage
	// NID is the event's number in the database, for storage functions.
	NID int64
}

// ParseRecord turns a stored event row (from the storage read functions)
// into a StoredEvent.
func ParseRecord(rec *storage.EventRecord) (*StoredEvent, error) {
	ev, err := parseRecord(rec)
	if err != nil {
		return nil, err
	}
	return &StoredEvent{
		Event:      ev,
		StreamPos:  rec.StreamPos,
		RoomID:     rec.RoomID,
		Redacted:   rec.RedactedBy != "",
		RedactedBy: rec.RedactedBy,
		Rejected:   rec.Rejected,
		SoftFailed: rec.SoftFailed,
		Unsigned:   unsignedOf(rec.JSON),
		NID:        rec.NID,
	}, nil
}

func parseRecords(recs []*storage.EventRecord) ([]*pdu.Event, error) {
	out := make([]*pdu.Event, 0, len(recs))
	for _, r := range recs {
		ev, err := parseRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// RoomVersion returns the room's version, or ErrRoomNotFound.
func (rs *Roomserver) RoomVersion(ctx context.Context, roomID string) (*pdu.RoomVersion, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	return pdu.GetRoomVersion(room.Version)
}

// CurrentStateEvent returns the event of the room's current state at k,
// nil when there is none; ErrRoomNotFound for an unknown room.
func (rs *Roomserver) CurrentStateEvent(ctx context.Context, roomID string, k pdu.StateKey) (*pdu.Event, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	recs, err := rs.db.CurrentStateEvents(ctx, room.NID, []storage.StateKey{storage.StateKey(k)})
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return parseRecord(recs[0])
}

// CurrentState returns every event of the room's current state.
func (rs *Roomserver) CurrentState(ctx context.Context, roomID string) ([]*pdu.Event, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	recs, err := rs.db.CurrentState(ctx, room.NID, "")
	if err != nil {
		return nil, err
	}
	return parseRecords(recs)
}

// CurrentStateOfType returns the events of the room's current state of one
// type (e.g. every m.room.member).
func (rs *Roomserver) CurrentStateOfType(ctx context.Context, roomID, evType string) ([]*pdu.Event, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	recs, err := rs.db.CurrentState(ctx, room.NID, evType)
	if err != nil {
		return nil, err
	}
	return parseRecords(recs)
}

// Membership returns the user's current membership in the room ("join",
// "invite", "leave", "ban", "knock"), "" when the user has none or the room
// is unknown.
func (rs *Roomserver) Membership(ctx context.Context, roomID, userID string) (string, error) {
	return rs.db.Membership(ctx, roomID, userID)
}

// RoomsForUser returns the rooms where the user's current membership is
// one of memberships (any when none is given).
func (rs *Roomserver) RoomsForUser(ctx context.Context, userID string, memberships ...string) ([]string, error) {
	return rs.db.RoomsForUser(ctx, userID, memberships...)
}

// JoinedMembers returns the user IDs joined to the room, sorted.
func (rs *Roomserver) JoinedMembers(ctx context.Context, roomID string) ([]string, error) {
	room, err := rs.db.Room(ctx, roomID)
	if err != nil {
		return nil, wrapNotFound(err, roomID)
	}
	ms, err := rs.db.RoomMembers(ctx, room.NID, "join")
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UserID
	}
	return out, nil
}

// Event returns a stored event, or ErrEventNotFound.
func (rs *Roomserver) Event(ctx context.Context, eventID string) (*StoredEvent, error) {
	recs, err := rs.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("event %s: %w", eventID, ErrEventNotFound)
	}
	return ParseRecord(recs[0])
}

// StateBefore returns the room state before the event (ErrEventNotFound
// for an unknown event).
func (rs *Roomserver) StateBefore(ctx context.Context, eventID string) ([]*pdu.Event, error) {
	return rs.stateAt(ctx, eventID, false)
}

// StateAfter returns the room state after the event: the state before it,
// plus the event itself if it is an accepted state event.
func (rs *Roomserver) StateAfter(ctx context.Context, eventID string) ([]*pdu.Event, error) {
	return rs.stateAt(ctx, eventID, true)
}

func (rs *Roomserver) stateAt(ctx context.Context, eventID string, after bool) ([]*pdu.Event, error) {
	recs, err := rs.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("event %s: %w", eventID, ErrEventNotFound)
	}
	snap := recs[0].StateBeforeNID
	if after {
		snap = recs[0].StateAfterNID
	}
	state, err := rs.db.SnapshotEvents(ctx, snap)
	if err != nil {
		return nil, err
	}
	return parseRecords(state)
}

// StateAtPos returns the room state at a stream position: after the room's
// last timeline event at or before pos (empty if none).
func (rs *Roomserver) StateAtPos(ctx context.Context, roomID string, pos int64) ([]*pdu.Event, error) {
	recs, err := rs.db.RoomStateAt(ctx, roomID, pos)
	if err != nil {
		return nil, err
	}
	return parseRecords(recs)
}

// MembershipEvent returns the member event of the user's current
// membership of the room, nil when there is none.
func (rs *Roomserver) MembershipEvent(ctx context.Context, roomID, userID string) (*pdu.Event, error) {
	rec, err := rs.db.MembershipEvent(ctx, roomID, userID)
	if err != nil || rec == nil {
		return nil, err
	}
	return parseRecord(rec)
}
