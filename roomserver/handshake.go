package roomserver

// The roomserver's part in the membership handshakes of the Server-Server
// API, where a server that is not in a room (or a user who is not) deals
// with a server that is:
//
//   - BuildEvent makes the events a resident server offers (make_join,
//     make_leave, make_knock templates) and the invites this server sends
//     to other servers for countersigning, without storing them.
//   - ImportJoin takes the answer of a remote server to send_join (the
//     join event, the room state before it and its auth chain) and makes
//     the room this server's, with the join as its first timeline event.
//   - StoreOutOfBand keeps a membership event of a local user in a room
//     this server is not in (an invite from another server, a knock, the
//     rejection of a remote invite): outside the DAG, but on the stream so
//     that /sync shows it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// signatureWorkers bounds the concurrent signature checks of one import.
const signatureWorkers = 8

// BuildEvent builds and signs an event on the room's current state, as
// Send would, checks it against the auth rules, and returns it without
// storing it. Unlike Send, the sender may be a user of another server:
// this is how a resident server builds the template of a remote user's
// join, leave or knock (the remote server signs its own copy).
func (rs *Roomserver) BuildEvent(ctx context.Context, roomID string, req EventRequest) (*pdu.Event, error) {
	if req.Type == "" || req.Sender == "" {
		return nil, &BadRequestError{Reason: "an event needs a type and a sender"}
	}
	var built *pdu.Event
	_, err := rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		rc, err := w.room(ctx, roomID)
		if err != nil {
			return nil, err
		}
		ev, state, err := w.buildLocal(ctx, rc, req)
		if err != nil {
			return nil, err
		}
		if err := auth.Check(ev, state.lookup); err != nil {
			return nil, fmt.Errorf("event refused: %w", err)
		}
		built = ev
		return nil, nil
	})
	return built, err
}

// ImportJoin makes a remote room this server's from a send_join answer:
// join is the joining user's signed join event, state the room state
// before it and authChain the auth chain of both. Every event's
// signatures are checked (those that fail are dropped), the state and auth
// chain are stored as outliers, each checked against its own auth events
// (those that fail are stored rejected and left out of the state), the
// join is checked against the state and stored as the room's newest
// event, and the room's current state becomes the state after it.
//
// The room may be new or held already (a room this server left, or one
// with only an invite); either way its forward extremities become the
// join alone. A join already stored returns ErrDuplicate.
func (rs *Roomserver) ImportJoin(ctx context.Context, join *pdu.Event, state, authChain []*pdu.Event) (*Output, error) {
	if join.Type() != "m.room.member" || join.Membership() != "join" || join.StateKey() == nil || *join.StateKey() != join.Sender() {
		return nil, &BadRequestError{Reason: fmt.Sprintf("event %s is not a join", join.EventID())}
	}
	roomID, ver := join.RoomID(), join.Version()
	good, err := rs.checkSignatures(ctx, join)
	if err != nil {
		return nil, &BadRequestError{Reason: "the join event: " + err.Error()}
	}
	join = good
	events, stateIDs := rs.checkAllSignatures(ctx, roomID, ver, state, authChain)

	outs, err := rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		rc, err := w.roomBroughtBy(ctx, join)
		if err != nil {
			return nil, err
		}
		snap, err := w.importState(ctx, rc, events, stateIDs)
		if err != nil {
			return nil, err
		}
		if snap == 0 {
			return nil, &BadRequestError{Reason: "the room state is empty"}
		}
		if err := w.checkAgainstOwnAuthEvents(ctx, roomID, join); err != nil {
			return nil, &BadRequestError{Reason: "the join fails its auth events: " + err.Error()}
		}
		before, err := w.snapshotState(ctx, snap, authKeys(ver, join))
		if err != nil {
			return nil, err
		}
		if err := auth.Check(join, before.lookup); err != nil {
			return nil, &BadRequestError{Reason: "the join fails the auth rules against the room state: " + err.Error()}
		}
		// The join is the room's only forward extremity: what this server
		// knew of the room before (if anything) is history now.
		rc.extremities = nil
		out, err := w.persist(ctx, rc, join, persistOpts{stateBefore: snap})
		if err != nil {
			return nil, err
		}
		return []Output{*out}, nil
	})
	if err != nil {
		return nil, err
	}
	return &outs[0], nil
}

// roomBroughtBy returns the room of an event that brings a room to this
// server (a join's answer, an out-of-band membership), creating it without
// state when it is not held: ErrDuplicate when the event is stored
// already, a *BadRequestError when the room is held with another version.
func (w *writer) roomBroughtBy(ctx context.Context, ev *pdu.Event) (*roomCtx, error) {
	roomID, ver := ev.RoomID(), ev.Version()
	rc, err := w.room(ctx, roomID)
	if errors.Is(err, ErrRoomNotFound) {
		nid, err := w.tx.InsertRoom(ctx, roomID, ver.ID)
		if err != nil {
			return nil, err
		}
		rc = &roomCtx{room: &storage.Room{NID: nid, RoomID: roomID, Version: ver.ID}, ver: ver}
		w.rooms[roomID] = rc
		w.touch(roomID, rc, false)
	} else if err != nil {
		return nil, err
	}
	if rc.ver != ver {
		return nil, &BadRequestError{Reason: fmt.Sprintf("room %s has version %s here, event %s version %s", roomID, rc.ver.ID, ev.EventID(), ver.ID)}
	}
	if known, err := w.tx.EventsByID(ctx, []string{ev.EventID()}); err != nil {
		return nil, err
	} else if len(known) > 0 {
		return nil, ErrDuplicate
	}
	return rc, nil
}

// ErrDuplicate: the event is stored already.
var ErrDuplicate = errors.New("event already stored")

// checkAllSignatures checks the signatures of the state and auth chain
// events concurrently and returns those that pass, deduplicated, with
// the IDs of the state events among them. Events of another room or
// version are dropped.
func (rs *Roomserver) checkAllSignatures(ctx context.Context, roomID string, ver *pdu.RoomVersion, state, authChain []*pdu.Event) ([]*pdu.Event, []string) {
	all := make([]*pdu.Event, 0, len(state)+len(authChain))
	seen := make(map[string]bool, cap(all))
	for _, ev := range append(append([]*pdu.Event(nil), state...), authChain...) {
		if seen[ev.EventID()] || ev.Version() != ver || (ev.RoomID() != roomID && !(ver.CreateEventIsRoomID && ev.Type() == "m.room.create")) {
			continue
		}
		seen[ev.EventID()] = true
		all = append(all, ev)
	}
	checked := make([]*pdu.Event, len(all))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(signatureWorkers, len(all)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				good, err := rs.checkSignatures(ctx, all[i])
				if err != nil {
					rs.logger.Warn("dropping an event of a joined room's state", "room_id", roomID, "event_id", all[i].EventID(), "err", err)
					continue
				}
				checked[i] = good
			}
		}()
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()

	good := make([]*pdu.Event, 0, len(checked))
	for _, ev := range checked {
		if ev != nil {
			good = append(good, ev)
		}
	}
	var stateIDs []string
	for _, ev := range state {
		if ev.IsState() {
			stateIDs = append(stateIDs, ev.EventID())
		}
	}
	return good, stateIDs
}

// importState stores events (a state and its auth chain another server
// gave) as outliers (storeOutliers) and returns a new snapshot of the
// state: those of stateIDs stored and not rejected. 0 when none is.
func (w *writer) importState(ctx context.Context, rc *roomCtx, events []*pdu.Event, stateIDs []string) (int64, error) {
	stored, err := w.storeOutliers(ctx, rc, events)
	if err != nil {
		return 0, err
	}
	state := storage.StateMap{}
	for _, id := range stateIDs {
		if s, ok := stored[id]; ok && !s.rejected && s.stateKeyNID != 0 {
			state[s.stateKeyNID] = s.nid
		}
	}
	if len(state) == 0 {
		return 0, nil
	}
	return w.tx.NewSnapshot(ctx, rc.room.NID, 0, state)
}

// storedOutlier is where storeOutliers put an event.
type storedOutlier struct {
	nid, stateKeyNID int64
	rejected         bool
}

// storeOutliers stores events (state and auth chain of a joined room) as
// outliers, parents first, each checked against its auth events; events
// stored already are reused. It returns where each event is.
func (w *writer) storeOutliers(ctx context.Context, rc *roomCtx, events []*pdu.Event) (map[string]storedOutlier, error) {
	ids := make([]string, len(events))
	var keys []storage.StateKey
	for i, ev := range events {
		ids[i] = ev.EventID()
		if ev.IsState() {
			keys = append(keys, storage.StateKey(ev.StateTuple()))
		}
	}
	keyNIDs, err := w.tx.StateKeyNIDs(ctx, keys, true)
	if err != nil {
		return nil, err
	}
	known, err := w.tx.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]storedOutlier, len(events))
	for _, r := range known {
		stored[r.EventID] = storedOutlier{nid: r.NID, stateKeyNID: r.StateKeyNID, rejected: r.Rejected}
	}
	byID := make(map[string]*pdu.Event, len(events))
	for _, ev := range events {
		byID[ev.EventID()] = ev
	}
	for _, ev := range authOrder(events) {
		if _, ok := stored[ev.EventID()]; ok {
			continue
		}
		authIDs := ev.AuthEventIDs()
		if rc.ver.CreateEventIsRoomID && ev.Type() != "m.room.create" {
			authIDs = append(authIDs[:len(authIDs):len(authIDs)], "$"+strings.TrimPrefix(rc.room.RoomID, "!"))
		}
		var authEvents []*pdu.Event
		rejected := false
		for _, id := range authIDs {
			a := byID[id]
			s, ok := stored[id]
			if a == nil || !ok || s.rejected {
				// An auth event the answer lacks, or one rejected: the
				// rule "entries which were themselves rejected" applies.
				rejected = true
				break
			}
			authEvents = append(authEvents, a)
		}
		if !rejected && auth.CheckAuthEvents(ev, authEvents) != nil {
			rejected = true
		}
		rec := &storage.EventRecord{
			EventID: ev.EventID(), RoomNID: rc.room.NID, Type: ev.Type(), Sender: ev.Sender(),
			Depth: ev.Depth(), OriginServerTS: ev.OriginServerTS(), Membership: ev.Membership(),
			Redacts: ev.Redacts(), Rejected: rejected, Outlier: true, JSON: ev.JSON(),
		}
		if ev.IsState() {
			rec.StateKeyNID = keyNIDs[storage.StateKey(ev.StateTuple())]
		}
		nid, err := w.tx.InsertEvent(ctx, rec)
		if err != nil {
			return nil, err
		}
		stored[ev.EventID()] = storedOutlier{nid: nid, stateKeyNID: rec.StateKeyNID, rejected: rejected}
	}
	return stored, nil
}

// authOrder sorts events so that each comes after the events among them
// that it names as auth events (a depth-first walk; a cycle, which no
// valid room has, is broken arbitrarily).
func authOrder(events []*pdu.Event) []*pdu.Event {
	byID := make(map[string]*pdu.Event, len(events))
	for _, ev := range events {
		byID[ev.EventID()] = ev
	}
	out := make([]*pdu.Event, 0, len(events))
	state := make(map[string]int8, len(events)) // 1 visiting, 2 done
	var visit func(ev *pdu.Event)
	visit = func(ev *pdu.Event) {
		if state[ev.EventID()] != 0 {
			return
		}
		state[ev.EventID()] = 1
		for _, id := range ev.AuthEventIDs() {
			if a := byID[id]; a != nil {
				visit(a)
			}
		}
		// In v12 rooms the create event is an implicit auth event.
		if ev.Version().CreateEventIsRoomID && ev.Type() != "m.room.create" {
			if c := byID["$"+strings.TrimPrefix(ev.RoomID(), "!")]; c != nil {
				visit(c)
			}
		}
		state[ev.EventID()] = 2
		out = append(out, ev)
	}
	for _, ev := range events {
		visit(ev)
	}
	return out
}

// checkAgainstOwnAuthEvents applies the auth rules to ev against the
// events it names as auth events, which must be stored and not rejected.
func (w *writer) checkAgainstOwnAuthEvents(ctx context.Context, roomID string, ev *pdu.Event) error {
	authIDs := append([]string(nil), ev.AuthEventIDs()...)
	if ev.Version().CreateEventIsRoomID {
		authIDs = append(authIDs, "$"+strings.TrimPrefix(roomID, "!"))
	}
	recs, err := w.tx.EventsByID(ctx, authIDs)
	if err != nil {
		return err
	}
	evs := make([]*pdu.Event, 0, len(recs))
	for _, r := range recs {
		if r.Rejected {
			return fmt.Errorf("auth event %s was rejected", r.EventID)
		}
		a, err := parseRecord(r)
		if err != nil {
			return err
		}
		evs = append(evs, a)
	}
	return auth.CheckAuthEvents(ev, evs)
}

// StoreOutOfBand stores a membership event about a local user in a room
// this server does not take part in: an invite from another server, a
// knock the user made through another server, or the rejection of such an
// invite or knock. roomState, the room's state the other server sent with
// an invite or a knock, is kept in the stored event's
// unsigned.invite_room_state or knock_room_state for the user's client. The event's signatures are
// checked; the auth rules cannot be, as this server lacks the room state
// (the remote server checked them). It is stored as an outlier, outside
// the DAG and the room state, but with a stream position and as the
// user's membership, so /sync shows it. The room is created (without
// state) if this server does not know it. ErrDuplicate if stored already.
func (rs *Roomserver) StoreOutOfBand(ctx context.Context, ev *pdu.Event, roomState []json.RawMessage) (*Output, error) {
	if ev.Type() != "m.room.member" || ev.StateKey() == nil || pdu.DomainOf(*ev.StateKey()) != rs.serverName {
		return nil, &BadRequestError{Reason: fmt.Sprintf("event %s is not the membership of a user of this server", ev.EventID())}
	}
	good, err := rs.checkSignatures(ctx, ev)
	if err != nil {
		return nil, &BadRequestError{Reason: err.Error()}
	}
	roomID := good.RoomID()
	stored := good.JSON()
	if key := good.Membership() + "_room_state"; good.Membership() == "invite" || good.Membership() == "knock" {
		if roomState == nil {
			roomState = []json.RawMessage{}
		}
		state, err := json.Marshal(roomState)
		if err != nil {
			return nil, err
		}
		if stored, err = good.JSONWithUnsigned(key, state); err != nil {
			return nil, err
		}
	}
	outs, err := rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		rc, err := w.roomBroughtBy(ctx, good)
		if err != nil {
			return nil, err
		}
		nids, err := w.tx.StateKeyNIDs(ctx, []storage.StateKey{storage.StateKey(good.StateTuple())}, true)
		if err != nil {
			return nil, err
		}
		pos, err := w.tx.NextStreamPos(ctx)
		if err != nil {
			return nil, err
		}
		rec := &storage.EventRecord{
			EventID: good.EventID(), RoomNID: rc.room.NID, RoomID: roomID, Type: good.Type(), Sender: good.Sender(),
			StateKeyNID: nids[storage.StateKey(good.StateTuple())], StateKey: good.StateKey(), Depth: good.Depth(),
			OriginServerTS: good.OriginServerTS(), Membership: good.Membership(), Outlier: true,
			StreamPos: pos, JSON: stored,
		}
		nid, err := w.tx.InsertEvent(ctx, rec)
		if err != nil {
			return nil, err
		}
		rec.NID = nid
		if err := w.tx.SetMembership(ctx, rc.room.NID, *good.StateKey(), good.Membership(), nid); err != nil {
			return nil, err
		}
		return []Output{{Event: good, StreamPos: pos, record: rec}}, nil
	})
	if err != nil {
		return nil, err
	}
	return &outs[0], nil
}

// strippedStateKeys are the state events of a room's stripped state
// (client-server-api "Stripped state"): what a user invited to or knocking
// on a room sees of it.
var strippedStateKeys = []pdu.StateKey{
	{Type: "m.room.create"}, {Type: "m.room.name"}, {Type: "m.room.avatar"}, {Type: "m.room.topic"},
	{Type: "m.room.join_rules"}, {Type: "m.room.canonical_alias"}, {Type: "m.room.encryption"},
}

// StrippedState returns the events of the room's stripped state from its
// current state, whole (since v1.16 servers exchange them as PDUs, which
// the receiver can check; clients get them stripped).
func (rs *Roomserver) StrippedState(ctx context.Context, roomID string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	for _, k := range strippedStateKeys {
		ev, err := rs.CurrentStateEvent(ctx, roomID, k)
		if err != nil {
			return nil, err
		}
		if ev != nil {
			out = append(out, ev.JSON())
		}
	}
	return out, nil
}

// CheckSignatures checks an event's required signatures and its content
// hash, as for any received event; it returns the event to use (redacted
// when the hash does not match).
func (rs *Roomserver) CheckSignatures(ctx context.Context, ev *pdu.Event) (*pdu.Event, error) {
	return rs.checkSignatures(ctx, ev)
}
