package federation

// Received receipts (server-server-api "Receipts"): a remote server's
// users' read receipts, threaded ones included, stored beside local ones
// (storage.PutRemoteReceipt) and shown by /sync.

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	eduReceipt = "m.receipt"
	// receiptRead is the only receipt type servers exchange: m.read.private
	// never leaves its server.
	receiptRead = "m.read"
	// maxReceiptsPerEDU bounds the receipts applied from one EDU.
	maxReceiptsPerEDU = 1000
)

// remoteReceipt is one user's receipt in an m.receipt EDU.
type remoteReceipt struct {
	EventIDs []string `json:"event_ids"`
	Data     struct {
		TS       *int64          `json:"ts"`
		ThreadID json.RawMessage `json:"thread_id"`
	} `json:"data"`
}

// receiveReceipts applies an m.receipt EDU: {room_id: {"m.read": {user_id:
// {event_ids, data: {ts, thread_id}}}}}. Each receipt must be of a user of
// origin's, in a room origin may speak about; the others are ignored.
func (a *API) receiveReceipts(ctx context.Context, origin string, content json.RawMessage) error {
	var rooms map[string]map[string]json.RawMessage
	if err := json.Unmarshal(content, &rooms); err != nil {
		ignoreEDU(ctx, origin, eduReceipt, "malformed")
		return nil
	}
	var receipts []storage.Receipt
	for _, roomID := range slices.Sorted(maps.Keys(rooms)) {
		raw := rooms[roomID][receiptRead]
		if raw == nil {
			continue
		}
		var byUser map[string]remoteReceipt
		if err := json.Unmarshal(raw, &byUser); err != nil {
			ignoreEDU(ctx, origin, eduReceipt, "malformed", "room", roomID)
			continue
		}
		ok, err := a.roomAcceptsEDUsFrom(ctx, roomID, origin)
		if err != nil {
			return err
		}
		if !ok {
			ignoreEDU(ctx, origin, eduReceipt, "not a room shared with the origin, or its ACL denies the origin", "room", roomID)
			continue
		}
		for _, userID := range slices.Sorted(maps.Keys(byUser)) {
			if len(receipts) == maxReceiptsPerEDU {
				break
			}
			r, why := a.parseReceipt(roomID, userID, origin, byUser[userID])
			if why != "" {
				ignoreEDU(ctx, origin, eduReceipt, why, "room", roomID, "user", userID)
				continue
			}
			receipts = append(receipts, r)
		}
	}
	if len(receipts) == 0 {
		return nil
	}
	return a.storeRemoteReceipts(ctx, receipts)
}

// parseReceipt checks one user's receipt; why says what is wrong with it.
func (a *API) parseReceipt(roomID, userID, origin string, rr remoteReceipt) (_ storage.Receipt, why string) {
	if roomserver.UserServer(userID) != origin || !strings.HasPrefix(userID, "@") {
		return storage.Receipt{}, "the user is not the origin's"
	}
	if len(rr.EventIDs) == 0 || !strings.HasPrefix(rr.EventIDs[0], "$") {
		return storage.Receipt{}, "no event ID"
	}
	r := storage.Receipt{RoomID: roomID, Type: receiptRead, UserID: userID, EventID: rr.EventIDs[0]}
	if rr.Data.TS != nil {
		r.TS = *rr.Data.TS
	} else {
		r.TS = a.now().UnixMilli()
	}
	if rr.Data.ThreadID != nil && string(rr.Data.ThreadID) != "null" {
		var thread string
		if err := json.Unmarshal(rr.Data.ThreadID, &thread); err != nil || thread != "main" && !strings.HasPrefix(thread, "$") {
			return storage.Receipt{}, `thread_id is not "main" or an event ID`
		}
		r.ThreadID = thread
	}
	return r, ""
}

// storeRemoteReceipts stores the receipts in one transaction and wakes
// the syncs of their rooms.
func (a *API) storeRemoteReceipts(ctx context.Context, receipts []storage.Receipt) error {
	// The receipted events' positions, for those this server holds (the
	// receipt may arrive before the event).
	ids := make([]string, len(receipts))
	for i, r := range receipts {
		ids[i] = r.EventID
	}
	recs, err := a.db.EventsByID(ctx, ids)
	if err != nil {
		return err
	}
	events := make(map[string]*storage.EventRecord, len(recs))
	for _, rec := range recs {
		events[rec.EventID] = rec
	}
	changed := map[string]int64{} // room → its last new position
	err = a.db.WithTx(ctx, func(tx *storage.Tx) error {
		clear(changed)
		for _, r := range receipts {
			if ev := events[r.EventID]; ev != nil {
				if ev.RoomID != r.RoomID {
					continue // an event of another room: not a receipt of this one
				}
				r.EventPos = ev.StreamPos
			}
			pos, err := tx.PutRemoteReceipt(ctx, r)
			if err != nil {
				return err
			}
			if pos > 0 {
				changed[r.RoomID] = pos
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, roomID := range slices.Sorted(maps.Keys(changed)) {
		n := bus.SyncNotification{Pos: changed[roomID], RoomID: roomID, Kind: bus.SyncKindReceipt}
		if err := bus.NotifySync(ctx, a.bus, n); err != nil {
			// The receipt is stored: syncs see it at their next call.
			httputil.Logger(ctx).WarnContext(ctx, "cannot publish a sync notification", "err", err)
		}
	}
	return nil
}
