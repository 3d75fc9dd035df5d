package roomserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Local events: built and signed here, then put through the input path.

// Send builds, signs and sends local events to a room, in order and
// atomically: all are stored or none. For each it takes the room's forward
// extremities as prev_events and the auth events the auth events selection
// picks from the current state, checks the event against the current
// state, stores it with its state snapshot, moves the forward extremities
// and the current state and gives it a stream position; after the commit
// the events are published on the output stream.
//
// A request whose Txn was seen before in the room returns the event it
// produced then, without sending another.
//
// Errors (wrapped): ErrRoomNotFound; *auth.NotAllowedError when the auth
// rules refuse an event (or a redaction the sender may not make);
// *pdu.FormatError for an event that is malformed or too large;
// *BadRequestError for a sender that is not a local user.
func (rs *Roomserver) Send(ctx context.Context, roomID string, reqs ...EventRequest) ([]Output, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	return rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		outs := make([]Output, 0, len(reqs))
		for _, req := range reqs {
			out, err := w.sendLocal(ctx, roomID, req)
			if err != nil {
				return nil, err
			}
			outs = append(outs, *out)
		}
		return outs, nil
	})
}

// CreateRoom creates a room: its m.room.create event (with
// CreationContent, the room version and, in versions that have it, the
// creator), then the Initial events, in one transaction. It returns the
// room ID and every event sent, the create event first.
func (rs *Roomserver) CreateRoom(ctx context.Context, req CreateRoomRequest) (string, []Output, error) {
	ver := req.Version
	if ver == nil {
		var err error
		if ver, err = pdu.GetRoomVersion(pdu.DefaultRoomVersion); err != nil {
			return "", nil, err
		}
	}
	if err := rs.checkLocalSender(req.Creator); err != nil {
		return "", nil, err
	}
	create, err := rs.buildCreate(ver, req.Creator, req.CreationContent)
	if err != nil {
		return "", nil, err
	}
	roomID := create.RoomID()
	outs, err := rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		if err := auth.Check(create, nil); err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
		nid, err := w.tx.InsertRoom(ctx, roomID, ver.ID)
		if errors.Is(err, storage.ErrRoomExists) {
			return nil, fmt.Errorf("create room %s: %w", roomID, ErrRoomExists)
		}
		if err != nil {
			return nil, err
		}
		rc := &roomCtx{room: &storage.Room{NID: nid, RoomID: roomID, Version: ver.ID}, ver: ver}
		w.rooms[roomID] = rc
		w.touch(roomID, rc, false)
		out, err := w.persist(ctx, rc, create, persistOpts{})
		if err != nil {
			return nil, err
		}
		outs := []Output{*out}
		for _, r := range req.Initial {
			out, err := w.sendLocal(ctx, roomID, r)
			if err != nil {
				return nil, err
			}
			outs = append(outs, *out)
		}
		return outs, nil
	})
	if err != nil {
		return "", nil, err
	}
	return roomID, outs, nil
}

// buildCreate builds the m.room.create event of a new room.
func (rs *Roomserver) buildCreate(ver *pdu.RoomVersion, creator string, creationContent json.RawMessage) (*pdu.Event, error) {
	content := map[string]json.RawMessage{}
	if len(creationContent) > 0 && string(creationContent) != "null" {
		if err := json.Unmarshal(creationContent, &content); err != nil {
			return nil, &BadRequestError{Reason: "creation_content is not a JSON object"}
		}
	}
	content["room_version"], _ = json.Marshal(ver.ID)
	if ver.CreatorInContent {
		content["creator"], _ = json.Marshal(creator)
	} else {
		delete(content, "creator")
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	empty := ""
	pe := pdu.ProtoEvent{
		Type:           "m.room.create",
		StateKey:       &empty,
		Sender:         creator,
		Content:        raw,
		Depth:          1,
		OriginServerTS: time.Now().UnixMilli(),
	}
	if !ver.CreateEventIsRoomID {
		pe.RoomID = "!" + randomString(18) + ":" + rs.serverName
	}
	return rs.sign(ver, pe)
}

// sign builds the event, making its ID in versions with opaque IDs.
func (rs *Roomserver) sign(ver *pdu.RoomVersion, pe pdu.ProtoEvent) (*pdu.Event, error) {
	if ver.EventIDs == pdu.EventIDOpaque {
		pe.EventID = "$" + randomString(18) + ":" + rs.serverName
	}
	keyID, key := rs.keys.Current()
	return pe.Build(ver, rs.serverName, keyID, key)
}

func (rs *Roomserver) checkLocalSender(sender string) error {
	if len(sender) < 2 || sender[0] != '@' || pdu.DomainOf(sender) != rs.serverName {
		return &BadRequestError{Reason: fmt.Sprintf("sender %q is not a user of this server", sender)}
	}
	return nil
}

// sendLocal is the input path for one local event, inside the batch.
func (w *writer) sendLocal(ctx context.Context, roomID string, req EventRequest) (*Output, error) {
	if err := w.rs.checkLocalSender(req.Sender); err != nil {
		return nil, err
	}
	if req.Type == "" {
		return nil, &BadRequestError{Reason: "no event type"}
	}
	rc, err := w.room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	if req.Txn != nil {
		if req.Txn.Endpoint == "" {
			return nil, errors.New("roomserver: a TxnKey without its Endpoint")
		}
		rec, err := w.tx.TxnEvent(ctx, rc.room.NID, req.Txn.UserID, req.Txn.DeviceID, req.Txn.Endpoint, req.Txn.TxnID)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			ev, err := parseRecord(rec)
			if err != nil {
				return nil, err
			}
			return &Output{Event: ev, StreamPos: rec.StreamPos, replay: true}, nil
		}
	}
	ev, state, err := w.buildLocal(ctx, rc, req)
	if err != nil {
		return nil, err
	}
	// Stages 2 to 4 of the input path in one: the auth events are the
	// current state at the keys the auth rules consult, and the state
	// before a local event is the current state.
	if err := auth.Check(ev, state.lookup); err != nil {
		return nil, fmt.Errorf("event refused: %w", err)
	}
	if ev.Type() == "m.room.redaction" && ev.Redacts() != "" {
		if err := w.checkLocalRedaction(ctx, rc, ev); err != nil {
			return nil, err
		}
	}
	return w.persist(ctx, rc, ev, persistOpts{stateBefore: rc.room.StateNID, txn: req.Txn})
}

// buildLocal builds and signs a local event on top of the room's forward
// extremities, and returns it with the current state events it cites.
func (w *writer) buildLocal(ctx context.Context, rc *roomCtx, req EventRequest) (*pdu.Event, stateEvents, error) {
	cited := auth.SelectAuthEvents(rc.ver, req.Type, req.StateKey, req.Sender, req.Content)
	// The room's create event is always loaded, cited or not: it tells
	// whether the room exists, and the auth rules read it even where the
	// selection leaves it out (version 12 rooms, where the room ID names
	// it; and an m.room.create request, which cites nothing and which the
	// rules must refuse as a second create event, not as an unknown room).
	createKey := pdu.StateKey{Type: "m.room.create"}
	keys := append([]pdu.StateKey{createKey}, cited...)
	state, err := w.currentState(ctx, rc, keys)
	if err != nil {
		return nil, nil, err
	}
	if state[createKey] == nil {
		return nil, nil, fmt.Errorf("room %s has no create event: %w", rc.room.RoomID, ErrRoomNotFound)
	}
	var authIDs []string
	for _, k := range cited {
		if ev := state[k]; ev != nil {
			authIDs = append(authIDs, ev.EventID())
		}
	}
	// The newest extremities, at most as many as prev_events may name.
	ext := append([]storage.Extremity(nil), rc.extremities...)
	sort.Slice(ext, func(a, b int) bool { return ext[a].Depth > ext[b].Depth })
	if len(ext) > pdu.MaxPrevEvents {
		ext = ext[:pdu.MaxPrevEvents]
	}
	prev := make([]string, len(ext))
	var depth int64
	for i, x := range ext {
		prev[i] = x.EventID
		depth = max(depth, x.Depth)
	}
	pe := pdu.ProtoEvent{
		Type:           req.Type,
		StateKey:       req.StateKey,
		Sender:         req.Sender,
		RoomID:         rc.room.RoomID,
		Content:        req.Content,
		PrevEvents:     prev,
		AuthEvents:     authIDs,
		Depth:          depth + 1,
		OriginServerTS: time.Now().UnixMilli(),
		Redacts:        req.Redacts,
	}
	if rc.ver.CreateEventIsRoomID && req.Type == "m.room.create" && req.StateKey != nil && *req.StateKey == "" {
		// The format of a version 12 create event has no room_id (its ID
		// names the room); built in that format, it reaches the auth
		// rules, which refuse it for its prev_events.
		pe.RoomID = ""
	}
	ev, err := w.rs.sign(rc.ver, pe)
	if err != nil {
		return nil, nil, err
	}
	return ev, state, nil
}

// checkLocalRedaction applies the client API's rule for redactions, as
// Synapse does: a user below the room's redact level may redact only their
// own events (403 otherwise, although the federation rule,
// auth.RedactionAllowed, would let any user of the original sender's
// server do it), and only known events of the same room (404, 400).
func (w *writer) checkLocalRedaction(ctx context.Context, rc *roomCtx, redaction *pdu.Event) error {
	levels, err := w.currentPowerLevels(ctx, rc)
	if err != nil {
		return err
	}
	recs, err := w.tx.EventsByID(ctx, []string{redaction.Redacts()})
	if err != nil {
		return err
	}
	if len(recs) > 0 && recs[0].RoomNID != rc.room.NID {
		return &BadRequestError{Reason: "the redacted event is in another room"}
	}
	if levels.UserLevel(redaction.Sender()) >= levels.Redact {
		return nil
	}
	if len(recs) == 0 {
		return fmt.Errorf("redacted event %s: %w", redaction.Redacts(), ErrEventNotFound)
	}
	if recs[0].Sender != redaction.Sender() {
		return fmt.Errorf("event refused: %w", &auth.NotAllowedError{Rule: "m.room.redaction",
			Reason: "the sender's power level is below the redact level and the event is another user's"})
	}
	return nil
}

// currentPowerLevels returns the room's effective power levels now.
func (w *writer) currentPowerLevels(ctx context.Context, rc *roomCtx) (*auth.PowerLevels, error) {
	state, err := w.currentState(ctx, rc, []pdu.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}})
	if err != nil {
		return nil, err
	}
	return auth.PowerLevelsFromState(state[pdu.StateKey{Type: "m.room.create"}], state[pdu.StateKey{Type: "m.room.power_levels"}])
}

// redactionAllowed applies auth.RedactionAllowed with the room's current
// power levels (a redaction changes no state, so they are those at it).
func (w *writer) redactionAllowed(ctx context.Context, rc *roomCtx, redaction, original *pdu.Event) (bool, error) {
	levels, err := w.currentPowerLevels(ctx, rc)
	if err != nil {
		return false, err
	}
	return auth.RedactionAllowed(redaction, original, levels), nil
}

// randomString returns n random letters.
func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
