package roomserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// ImportCreate starts holding a room another server created: it checks the
// m.room.create event's signatures and auth rules, creates the room with
// the event's version and stores the event as its first; the room's other
// events then enter through InputReceived. It is the first step of joining
// a remote room, never something a /send transaction may do (a remote
// server must not make this server hold rooms it did not join).
// ErrRoomExists when the room is held already.
func (rs *Roomserver) ImportCreate(ctx context.Context, create *pdu.Event) error {
	if create.Type() != "m.room.create" || !create.StateKeyEquals("") {
		return &BadRequestError{Reason: fmt.Sprintf("event %s is not an m.room.create event", create.EventID())}
	}
	good, err := rs.checkSignatures(ctx, create)
	if err != nil {
		return &BadRequestError{Reason: err.Error()}
	}
	if err := auth.Check(good, nil); err != nil {
		return &BadRequestError{Reason: "the create event fails the auth rules: " + err.Error()}
	}
	roomID := good.RoomID()
	_, err = rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		ver := good.Version()
		nid, err := w.tx.InsertRoom(ctx, roomID, ver.ID)
		if errors.Is(err, storage.ErrRoomExists) {
			return nil, fmt.Errorf("import room %s: %w", roomID, ErrRoomExists)
		}
		if err != nil {
			return nil, err
		}
		rc := &roomCtx{room: &storage.Room{NID: nid, RoomID: roomID, Version: ver.ID}, ver: ver}
		w.rooms[roomID] = rc
		w.touch(roomID, rc, false)
		out, err := w.persist(ctx, rc, good, persistOpts{})
		if err != nil {
			return nil, err
		}
		return []Output{*out}, nil
	})
	return err
}
