package clientapi

// Sending and reading room events (client-server-api "Sending events to a
// room", "Redactions", "Getting events for a room"): PUT
// /rooms/{roomId}/send/{eventType}/{txnId}, PUT
// /rooms/{roomId}/state/{eventType}/{stateKey}, PUT
// /rooms/{roomId}/redact/{eventId}/{txnId}, GET
// /rooms/{roomId}/event/{eventId} and GET
// /v1/rooms/{roomId}/timestamp_to_event.
//
// Transaction IDs are stored by the roomserver with the event they
// produced, per user, device, room and endpoint (send or redact, as
// Synapse keys them by request path): a retried request, even after a
// restart, returns the original event ID instead of sending again.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/clientevent"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func (a *API) registerEvents(r *mux.Router) {
	const p = v3Prefix + "rooms/{roomId}/"
	r.HandleFunc(p+"send/{eventType}/{txnId}", a.auth.Required(a.putSend)).Methods(http.MethodPut)
	// The state key may be empty, with or without the trailing slash.
	r.HandleFunc(p+"state/{eventType}", a.auth.Required(a.putState)).Methods(http.MethodPut)
	r.HandleFunc(p+"state/{eventType}/{stateKey:[^/]*}", a.auth.Required(a.putState)).Methods(http.MethodPut)
	r.HandleFunc(p+"redact/{eventId}/{txnId}", a.auth.Required(a.putRedact)).Methods(http.MethodPut)
	r.HandleFunc(p+"event/{eventId}", a.auth.Required(a.getEvent)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v1/rooms/{roomId}/timestamp_to_event", a.auth.Required(a.getTimestampToEvent)).Methods(http.MethodGet)
}

// eventIDResponse is the answer of the sending endpoints.
type eventIDResponse struct {
	EventID string `json:"event_id"`
}

// putSend implements PUT /rooms/{roomId}/send/{eventType}/{txnId}.
func (a *API) putSend(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	evType, txnID := httputil.PathVar(r, "eventType"), httputil.PathVar(r, "txnId")
	content, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.limits.Message.Check(d.UserID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	req := roomserver.EventRequest{
		Type: evType, Sender: d.UserID, Content: content,
		Txn: &roomserver.TxnKey{UserID: d.UserID, DeviceID: d.DeviceID, TxnID: txnID, Endpoint: roomserver.TxnSend},
	}
	if err := a.checkRelation(r.Context(), roomID, evType, req.Txn, content); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if evType == "m.room.redaction" {
		// room_send.yaml: redactions may be sent here in every room
		// version, with redacts in the content; before version 11 it
		// belongs at the top level of the event.
		redacts := gjson.GetBytes(content, "redacts")
		if redacts.Type != gjson.String {
			httputil.WriteError(w, r, httputil.BadJSON(`an m.room.redaction needs "redacts", the ID of the event to redact`))
			return
		}
		req.Redacts = redacts.Str
		ver, err := a.rs.RoomVersion(r.Context(), roomID)
		if err != nil {
			httputil.WriteError(w, r, roomError(err))
			return
		}
		if !ver.RedactsInContent {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(content, &m)
			delete(m, "redacts")
			req.Content, _ = json.Marshal(m)
		}
	}
	id, err := a.sendEvent(r.Context(), roomID, req)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, eventIDResponse{id})
}

// putState implements PUT /rooms/{roomId}/state/{eventType}/{stateKey}.
func (a *API) putState(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	evType, stateKey := httputil.PathVar(r, "eventType"), httputil.PathVar(r, "stateKey")
	content, err := httputil.ReadJSONObject(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if evType != "m.room.member" {
		// Membership changes count as joins and invites, not messages.
		if err := a.limits.Message.Check(d.UserID); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	if evType == "m.room.canonical_alias" && stateKey == "" {
		if err := a.checkCanonicalAlias(ctx, roomID, content); err != nil {
			httputil.WriteError(w, r, err)
			return
		}
	}
	id, err := a.sendState(ctx, roomID, d.UserID, evType, stateKey, content)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, eventIDResponse{id})
}

// putRedact implements PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
func (a *API) putRedact(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	target, txnID := httputil.PathVar(r, "eventId"), httputil.PathVar(r, "txnId")
	if err := checkEventID(target); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	raw, err := readObjectInto(r, &body)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := a.limits.Message.Check(d.UserID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	// The body is the content (reason, and anything else the client put
	// there); the roomserver adds redacts where the room version wants it.
	id, err := a.sendEvent(r.Context(), roomID, roomserver.EventRequest{
		Type: "m.room.redaction", Sender: d.UserID, Content: raw, Redacts: target,
		Txn: &roomserver.TxnKey{UserID: d.UserID, DeviceID: d.DeviceID, TxnID: txnID, Endpoint: roomserver.TxnRedact},
	})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, eventIDResponse{id})
}

// sendEvent sends one event through the roomserver and returns its ID,
// with roomserver errors turned into Matrix errors.
func (a *API) sendEvent(ctx context.Context, roomID string, req roomserver.EventRequest) (string, error) {
	outs, err := a.rs.Send(ctx, roomID, req)
	if err != nil {
		return "", roomError(err)
	}
	return outs[0].Event.EventID(), nil
}

// sendState sends a state event, unless the current state already holds
// an event of the same sender with the same content: then, as Synapse does,
// nothing is sent and that event's ID is returned, so that repeating a
// request (setting the same topic, joining twice) changes nothing.
func (a *API) sendState(ctx context.Context, roomID, sender, evType, stateKey string, content json.RawMessage) (string, error) {
	current, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: evType, StateKey: stateKey})
	if err != nil {
		return "", roomError(err)
	}
	if current != nil && current.Sender() == sender && sameJSON(current.Content(), content) {
		return current.EventID(), nil
	}
	return a.sendEvent(ctx, roomID, roomserver.EventRequest{
		Type: evType, StateKey: &stateKey, Sender: sender, Content: content,
	})
}

// checkCanonicalAlias applies room_state.yaml to a new
// m.room.canonical_alias content: aliases that it adds (alias or
// alt_aliases, not already in the current event) must be valid (400
// M_INVALID_PARAM) and point to this room (400 M_BAD_ALIAS).
func (a *API) checkCanonicalAlias(ctx context.Context, roomID string, content []byte) error {
	current, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.canonical_alias"})
	if err != nil {
		return roomError(err)
	}
	old := map[string]bool{}
	if current != nil {
		old[gjson.GetBytes(current.Content(), "alias").Str] = true
		for _, v := range gjson.GetBytes(current.Content(), "alt_aliases").Array() {
			old[v.Str] = true
		}
	}
	var added []gjson.Result
	if v := gjson.GetBytes(content, "alias"); v.Exists() && v.Type != gjson.Null {
		added = append(added, v)
	}
	if alt := gjson.GetBytes(content, "alt_aliases"); alt.Exists() {
		if !alt.IsArray() {
			return httputil.InvalidParam(`"alt_aliases" must be an array of room aliases`)
		}
		added = append(added, alt.Array()...)
	}
	for _, v := range added {
		if v.Type != gjson.String {
			return httputil.InvalidParam("invalid room alias " + v.Raw)
		}
		if old[v.Str] {
			continue
		}
		if _, _, err := parseAlias(v.Str); err != nil {
			return err
		}
		target, err := a.resolveAlias(ctx, v.Str)
		if err != nil || target != roomID {
			return httputil.NewError(http.StatusBadRequest, "M_BAD_ALIAS", "the alias "+v.Str+" does not point to this room")
		}
	}
	return nil
}

// getEvent implements GET /rooms/{roomId}/event/{eventId}: as Synapse
// answers, an event that does not exist (in this room) is 404 M_NOT_FOUND
// and one the user may not see 403 M_FORBIDDEN.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	eventID := httputil.PathVar(r, "eventId")
	if err := checkEventID(eventID); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	recs, err := a.db.EventsByID(ctx, []string{eventID})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if len(recs) == 0 || recs[0].RoomID != roomID || recs[0].StreamPos == 0 {
		httputil.WriteError(w, r, httputil.NotFound("event not found"))
		return
	}
	forgotten, err := a.db.IsRoomForgotten(ctx, d.UserID, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	visible, err := a.rs.FilterVisible(ctx, d.UserID, recs)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if forgotten || len(visible) == 0 {
		httputil.WriteError(w, r, httputil.Forbidden("you don't have permission to access that event"))
		return
	}
	// The requesting device's transaction ID goes with its own events, as
	// the spec asks of events returned to their sender.
	opts := clientevent.Options{WithRoomID: true}
	if opts.TxnIDs, err = a.db.TxnIDsOf(ctx, d.UserID, d.DeviceID, recs); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if opts.Relations, err = a.eventRelations(ctx, d.UserID, recs[0]); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, opts.Format(recs[0]))
}

// getTimestampToEvent implements GET /v1/rooms/{roomId}/timestamp_to_event:
// the event closest to ts in direction dir ("f": the first at or after ts,
// "b": the last at or before it), for users who may read the room.
func (a *API) getTimestampToEvent(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	roomID, err := roomIDVar(r)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	tsText, dir := q.Get("ts"), q.Get("dir")
	if tsText == "" || dir == "" {
		httputil.WriteError(w, r, httputil.MissingParam(`"ts" and "dir" are required`))
		return
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		httputil.WriteError(w, r, httputil.InvalidParam(`"ts" must be an integer (milliseconds since the Unix epoch)`))
		return
	}
	if dir != "f" && dir != "b" {
		httputil.WriteError(w, r, httputil.InvalidParam(`"dir" must be "f" or "b"`))
		return
	}
	ctx := r.Context()
	acc, err := a.canRead(ctx, d.UserID, roomID)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	upTo := int64(-1)
	if acc.LeftAt != nil {
		upTo = acc.LeftAt.StreamPos
	}
	ev, err := a.db.EventNearTimestamp(ctx, roomID, ts, dir == "f", upTo)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if ev == nil {
		direction := "forward"
		if dir == "b" {
			direction = "backward"
		}
		httputil.WriteError(w, r, httputil.NotFound(fmt.Sprintf("unable to find an event from %d in the %s direction", ts, direction)))
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string]any{"event_id": ev.EventID, "origin_server_ts": ev.OriginServerTS})
}

// checkEventID accepts an event ID: "$" and an opaque part, at most 255
// bytes; the error is 400 M_INVALID_PARAM.
func checkEventID(id string) error {
	if len(id) < 2 || len(id) > maxIDBytes || id[0] != '$' || strings.IndexByte(id, 0) >= 0 {
		return httputil.InvalidParam("invalid event ID: " + quoteID(id))
	}
	return nil
}
