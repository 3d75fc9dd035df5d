package sender

// Local users' read receipts, sent to the other servers in the room
// (server-server-api "Receipts"). The sender reads the receipts table in
// stream order from a cursor kept in the database, and queues each local
// m.read receipt as a durable EDU in the same transaction that moves the
// cursor: a receipt written while no sender ran, or while its destination
// was down, is still delivered, once. Private receipts never leave.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

const (
	eduReceipt     = "m.receipt"
	receiptsCursor = "receipts"
	// receiptsBatch bounds the receipts read at once.
	receiptsBatch = 500
)

type receiptsOut struct {
	s      *Sender
	wake   chan struct{}
	cursor int64 // read only by run, after init
}

// init reads the cursor. A new one starts at the present: receipts
// written before this server federated them are not sent.
func (r *receiptsOut) init(ctx context.Context) error {
	pos, found, err := r.s.cfg.DB.FederationCursor(ctx, receiptsCursor)
	if err != nil {
		return err
	}
	if !found {
		if pos, err = r.s.cfg.DB.StreamPos(ctx); err != nil {
			return err
		}
		if err := r.s.cfg.DB.WithTx(ctx, func(tx *storage.Tx) error {
			return tx.SetFederationCursor(ctx, receiptsCursor, pos)
		}); err != nil {
			return err
		}
	}
	r.cursor = pos
	signal(r.wake) // what was written since the last run
	return nil
}

// run forwards new receipts whenever it is woken, until the sender stops.
func (r *receiptsOut) run() {
	defer r.s.wg.Done()
	for {
		select {
		case <-r.s.stop:
			return
		case <-r.wake:
		}
		for {
			n, err := r.forward()
			if err != nil {
				r.s.log.Error("cannot forward receipts", "err", err)
				select {
				case <-r.s.stop:
					return
				case <-time.After(r.s.cfg.MinBackoff):
				}
				continue
			}
			if n < receiptsBatch {
				break
			}
		}
	}
}

// forward queues the receipts after the cursor, one batch, and returns how
// many it read.
func (r *receiptsOut) forward() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	receipts, err := r.s.cfg.DB.ReceiptsAfter(ctx, r.cursor, receiptsBatch)
	if err != nil || len(receipts) == 0 {
		return 0, err
	}
	type queued struct {
		dests []string
		edu   bus.EDU
	}
	var out []queued
	roomDests := map[string][]string{}
	for _, rc := range receipts {
		if rc.Type != "m.read" || roomserver.UserServer(rc.UserID) != r.s.cfg.ServerName {
			continue
		}
		dests, ok := roomDests[rc.RoomID]
		if !ok {
			if dests, err = r.s.RoomDestinations(ctx, rc.RoomID); err != nil {
				return 0, err
			}
			roomDests[rc.RoomID] = dests
		}
		if len(dests) > 0 {
			out = append(out, queued{dests, receiptEDU(rc)})
		}
	}
	last := receipts[len(receipts)-1].StreamPos
	err = r.s.cfg.DB.WithTx(ctx, func(tx *storage.Tx) error {
		for _, q := range out {
			if err := tx.EnqueueEDU(ctx, q.dests, q.edu.Type, q.edu.Key, q.edu.Content); err != nil {
				return err
			}
		}
		return tx.SetFederationCursor(ctx, receiptsCursor, last)
	})
	if err != nil {
		return 0, err
	}
	r.cursor = last
	for _, q := range out {
		for _, d := range q.dests {
			r.s.kick(d, false)
		}
	}
	return len(receipts), nil
}

// receiptEDU is the m.receipt EDU of one receipt. A user's receipts in
// different threads are separate EDUs: the content has room for one per
// user and type.
func receiptEDU(rc storage.Receipt) bus.EDU {
	data := map[string]any{"ts": rc.TS}
	if rc.ThreadID != "" {
		data["thread_id"] = rc.ThreadID
	}
	content, _ := json.Marshal(map[string]any{
		rc.RoomID: map[string]any{
			rc.Type: map[string]any{
				rc.UserID: map[string]any{"event_ids": []string{rc.EventID}, "data": data},
			},
		},
	})
	return bus.EDU{Type: eduReceipt, Content: content, Key: rc.RoomID + " " + rc.Type + " " + rc.UserID + " " + rc.ThreadID, Durable: true}
}
