package syncapi

// Receipts (client-server-api "Receipts": m.read, m.read.private, threaded
// receipts) and the fully read marker ("Read and unread markers",
// POST /read_markers). Receipts are stored (storage/receipts.go) at a
// stream position and reach syncs as m.receipt ephemeral events; the fully
// read marker is room account data that only the server writes.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/bus"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const (
	receiptRead        = "m.read"
	receiptReadPrivate = "m.read.private"
	markerFullyRead    = "m.fully_read"
)

// postReceipt serves POST /rooms/{roomId}/receipt/{receiptType}/{eventId}.
func (a *API) postReceipt(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	eventID, err := eventIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	receiptType := httputil.PathVar(r, "receiptType")
	switch receiptType {
	case receiptRead, receiptReadPrivate, markerFullyRead:
	default:
		httputil.WriteError(w, r, httputil.InvalidParam("receipt type must be m.read, m.read.private or m.fully_read, not "+strconv.Quote(receiptType)))
		return
	}
	body, err := readOptionalObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	threadID := ""
	if t := gjson.GetBytes(body, "thread_id"); t.Exists() {
		if t.Type != gjson.String || t.Str == "" {
			httputil.WriteError(w, r, httputil.InvalidParam("thread_id field must be a non-empty string"))
			return
		}
		if receiptType == markerFullyRead {
			httputil.WriteError(w, r, httputil.InvalidParam("thread_id is not allowed for m.fully_read"))
			return
		}
		if t.Str != "main" && t.Str[0] != '$' {
			httputil.WriteError(w, r, httputil.InvalidParam(`thread_id must be "main" or an event ID`))
			return
		}
		threadID = t.Str
	}
	if err := a.requireJoined(r.Context(), roomID, d.UserID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ev, err := a.roomEvent(r.Context(), roomID, eventID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if receiptType == markerFullyRead {
		err = a.setFullyRead(r.Context(), d.UserID, ev)
	} else {
		err = a.putReceipt(r.Context(), d.UserID, receiptType, threadID, ev)
	}
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	writeEmpty(w, r)
}

// readOptionalObject reads a JSON object body; an empty body counts as {}
// (some clients send none where the spec asks for {}).
func readOptionalObject(r *http.Request) ([]byte, error) {
	raw, err := httputil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return []byte(`{}`), nil
	}
	r.Body = readerOf(raw)
	return httputil.ReadJSONObject(r)
}

// roomEvent returns the event eventID of the room's timeline, or 404
// M_NOT_FOUND.
func (a *API) roomEvent(ctx context.Context, roomID, eventID string) (*storage.EventRecord, error) {
	evs, err := a.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 || evs[0].RoomID != roomID || evs[0].StreamPos == 0 {
		return nil, httputil.NotFound("event " + eventID + " not found in room " + roomID)
	}
	return evs[0], nil
}

// putReceipt stores a receipt and wakes the syncs that will show it: the
// room's for m.read, only the user's own for m.read.private.
func (a *API) putReceipt(ctx context.Context, userID, receiptType, threadID string, ev *storage.EventRecord) error {
	var pos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		var err error
		pos, err = tx.PutReceipt(ctx, storage.Receipt{
			RoomID: ev.RoomID, Type: receiptType, UserID: userID, ThreadID: threadID,
			EventID: ev.EventID, EventPos: ev.StreamPos, TS: time.Now().UnixMilli(),
		})
		if err != nil || pos == 0 {
			return err
		}
		// Both receipt types clear notifications up to the event (push
		// module, "Marking notifications as read").
		_, err = tx.MarkNotificationsRead(ctx, userID, ev.RoomID, threadID, ev.StreamPos, pos, time.Now().UnixMilli())
		return err
	})
	if err != nil || pos == 0 {
		return err
	}
	n := bus.SyncNotification{Pos: pos, Kind: bus.SyncKindReceipt}
	if receiptType == receiptReadPrivate {
		n.UserIDs = []string{userID}
	} else {
		n.RoomID = ev.RoomID
	}
	if err := bus.NotifySync(ctx, a.bus, n); err != nil {
		a.logger.Warn("cannot publish a sync notification", "err", err)
	}
	return nil
}

// setFullyRead moves the user's m.fully_read marker to ev, unless it is
// already at a later event (as Synapse: the marker only moves forward).
func (a *API) setFullyRead(ctx context.Context, userID string, ev *storage.EventRecord) error {
	current, err := a.db.GetAccountData(ctx, userID, ev.RoomID, markerFullyRead)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if id := gjson.GetBytes(current, "event_id").Str; id != "" {
		if id == ev.EventID {
			return nil
		}
		if old, err := a.db.EventsByID(ctx, []string{id}); err == nil && len(old) == 1 && old[0].StreamPos > ev.StreamPos {
			return nil
		}
	}
	content := []byte(`{"event_id":` + strconv.Quote(ev.EventID) + `}`)
	return a.setAccountData(ctx, userID, ev.RoomID, markerFullyRead, content)
}

// postReadMarkers serves POST /rooms/{roomId}/read_markers.
func (a *API) postReadMarkers(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDParam(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	markers := map[string]string{}
	for _, key := range []string{markerFullyRead, receiptRead, receiptReadPrivate} {
		v := gjson.GetBytes(body, gjsonEscape(key))
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if v.Type != gjson.String || len(v.Str) < 2 || v.Str[0] != '$' {
			httputil.WriteError(w, r, httputil.BadJSON(strconv.Quote(key)+" must be an event ID"))
			return
		}
		markers[key] = v.Str
	}
	if err := a.requireJoined(r.Context(), roomID, d.UserID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	// Check every event before writing anything, so a bad request leaves
	// nothing half done.
	events := map[string]*storage.EventRecord{}
	for key, id := range markers {
		ev, err := a.roomEvent(r.Context(), roomID, id)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		events[key] = ev
	}
	for _, key := range []string{receiptRead, receiptReadPrivate} {
		if ev := events[key]; ev != nil {
			if err := a.putReceipt(r.Context(), d.UserID, key, "", ev); err != nil {
				httputil.WriteError(w, r, err)
				return
			}
		}
	}
	if ev := events[markerFullyRead]; ev != nil {
		if err := a.setFullyRead(r.Context(), d.UserID, ev); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	writeEmpty(w, r)
}

// gjsonEscape escapes the characters gjson paths give meaning to, for
// looking up a key with dots such as "m.fully_read".
func gjsonEscape(key string) string {
	b := make([]byte, 0, len(key)+4)
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			b = append(b, '\\')
		}
		b = append(b, key[i])
	}
	return string(b)
}
