package federation

// Retrieving events (server-server-api "Retrieving events", "Retrieving
// event authorisation information"): GET /_matrix/federation/v1/event,
// /state, /state_ids and /event_auth. Each serves only what the requesting
// server may see: an event by the server visibility rule
// (roomserver.ServerEventVisibility), a room's state and auth chains only
// to a server in the room (one of its users joined now or at the event),
// as Synapse does. The room's server ACL applies to all but /event (which
// the spec does not list).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// MaxAuthChain is the most events an auth chain served in one response may
// hold; a longer one is refused rather than built in memory. Real rooms'
// chains hold a few events per member and per power-level change.
const MaxAuthChain = 50_000

func (a *API) registerEvents(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/event/{eventId}", a.getEvent).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/state/{roomId}", a.getState(false)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/state_ids/{roomId}", a.getState(true)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/federation/v1/event_auth/{roomId}/{eventId}", a.getEventAuth).Methods(http.MethodGet)
}

// transaction is the Transaction shape /event and /backfill answer with.
type transaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
}

func (a *API) transaction(pdus []json.RawMessage) transaction {
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	return transaction{Origin: a.cfg.ServerName, OriginServerTS: a.now().UnixMilli(), PDUs: pdus}
}

// getEvent implements GET /_matrix/federation/v1/event/{eventId}: 404 for
// an event we do not hold, 403 for one the origin may not see.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, err := a.eventRecord(r, httputil.PathVar(r, "eventId"), "")
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	vis, err := a.rs.FilterVisibleToServer(ctx, Origin(ctx), []*storage.EventRecord{rec})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if len(vis) == 0 {
		httputil.WriteError(w, r, httputil.Forbidden("this server may not see event "+rec.EventID))
		return
	}
	pdus, err := federationJSON(vis)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, a.transaction(pdus))
}

// eventRecord reads one event, 404 M_NOT_FOUND when unknown or (roomID
// given) in another room.
func (a *API) eventRecord(r *http.Request, eventID, roomID string) (*storage.EventRecord, error) {
	if eventID == "" {
		return nil, httputil.MissingParam("event_id is required")
	}
	recs, err := a.db.EventsByID(r.Context(), []string{eventID})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || roomID != "" && recs[0].RoomID != roomID {
		return nil, httputil.NotFound("no event " + eventID + " here")
	}
	return recs[0], nil
}

// roomEvent reads an event of the room for the origin, which must be in
// the room: one of its users joined now, or at the event (before or after
// it). 404 M_NOT_FOUND for an unknown room or event (or an event of
// another room), 403 M_FORBIDDEN when the origin is not in the room.
func (a *API) roomEvent(r *http.Request, roomID, eventID string) (*storage.EventRecord, error) {
	ctx := r.Context()
	origin := Origin(ctx)
	if _, err := a.rs.RoomVersion(ctx, roomID); err != nil {
		return nil, notFoundRoom(err, roomID)
	}
	if err := a.checkACL(r, roomID); err != nil {
		return nil, err
	}
	joinedNow, err := a.rs.ServerJoined(ctx, roomID, origin)
	if err != nil {
		return nil, err
	}
	rec, err := a.eventRecord(r, eventID, roomID)
	if err != nil {
		return nil, err
	}
	if joinedNow {
		return rec, nil
	}
	for _, snap := range []int64{rec.StateBeforeNID, rec.StateAfterNID} {
		if snap == 0 {
			continue
		}
		joined, err := a.rs.ServerJoinedAt(ctx, snap, origin)
		if err != nil {
			return nil, err
		}
		if joined {
			return rec, nil
		}
	}
	return nil, httputil.Forbidden("server " + origin + " is not in room " + roomID)
}

// getState implements GET /_matrix/federation/v1/state/{roomId} (full
// events) and /state_ids/{roomId} (IDs): the room state before event_id and
// the auth chain of that state.
func (a *API) getState(idsOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		roomID := httputil.PathVar(r, "roomId")
		eventID := r.URL.Query().Get("event_id")
		if eventID == "" {
			httputil.WriteError(w, r, httputil.MissingParam("event_id is required"))
			return
		}
		rec, err := a.roomEvent(r, roomID, eventID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if rec.Outlier || rec.Rejected {
			// No state is known at an outlier, and a rejected event's is
			// not one anyone should build on.
			httputil.WriteError(w, r, httputil.NotFound("no state is held at event "+eventID))
			return
		}
		state, err := a.db.SnapshotEvents(ctx, rec.StateBeforeNID)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		chain, err := a.authChainCtx(r, state)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		if idsOnly {
			httputil.WriteJSON(w, r, http.StatusOK, map[string][]string{"pdu_ids": eventIDs(state), "auth_chain_ids": eventIDs(chain)})
			return
		}
		pdus, err := federationJSON(state)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		chainJSON, err := federationJSON(chain)
		if err != nil {
			httputil.WriteError(w, r, err)
			return
		}
		httputil.WriteJSON(w, r, http.StatusOK, map[string][]json.RawMessage{"pdus": pdus, "auth_chain": chainJSON})
	}
}

// authChainCtx wraps roomserver.AuthChain with the cap, and the request's
// context.
func (a *API) authChainCtx(r *http.Request, events []*storage.EventRecord) ([]*storage.EventRecord, error) {
	chain, err := a.rs.AuthChain(r.Context(), events, MaxAuthChain)
	if errors.Is(err, roomserver.ErrAuthChainTooLarge) {
		return nil, httputil.NewError(http.StatusInternalServerError, "M_UNKNOWN", err.Error())
	}
	return chain, err
}

// getEventAuth implements GET
// /_matrix/federation/v1/event_auth/{roomId}/{eventId}: the event's auth
// chain.
func (a *API) getEventAuth(w http.ResponseWriter, r *http.Request) {
	roomID := httputil.PathVar(r, "roomId")
	rec, err := a.roomEvent(r, roomID, httputil.PathVar(r, "eventId"))
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	chain, err := a.authChainCtx(r, []*storage.EventRecord{rec})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	chainJSON, err := federationJSON(chain)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, map[string][]json.RawMessage{"auth_chain": chainJSON})
}

// checkACL answers 403 M_FORBIDDEN when the room's server ACL denies the
// origin (server-server-api "Server Access Control Lists (ACLs)": /state,
// /state_ids, /event_auth, /backfill and /get_missing_events are
// protected).
func (a *API) checkACL(r *http.Request, roomID string) error {
	ctx := r.Context()
	acl, err := a.rs.CurrentStateEvent(ctx, roomID, pdu.StateKey{Type: "m.room.server_acl"})
	if err != nil {
		return notFoundRoom(err, roomID)
	}
	if acl != nil && !roomserver.ServerACLAllows(acl.Content(), Origin(ctx)) {
		return httputil.Forbidden("server " + Origin(ctx) + " is denied by the room's server ACL")
	}
	return nil
}

// notFoundRoom turns ErrRoomNotFound into 404 M_NOT_FOUND.
func notFoundRoom(err error, roomID string) error {
	if errors.Is(err, roomserver.ErrRoomNotFound) {
		return httputil.NotFound("no room " + roomID + " here")
	}
	return err
}

// writeVisible answers with those of the events the origin may see, in
// their order, in the shape wrap gives their federation JSON.
func (a *API) writeVisible(w http.ResponseWriter, r *http.Request, recs []*storage.EventRecord, wrap func([]json.RawMessage) any) {
	vis, err := a.rs.FilterVisibleToServer(r.Context(), Origin(r.Context()), recs)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	pdus, err := federationJSON(vis)
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	httputil.WriteJSON(w, r, http.StatusOK, wrap(pdus))
}

// federationJSON returns the events as they are sent over federation (the
// redacted form of a redacted event, without unsigned).
func federationJSON(recs []*storage.EventRecord) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		se, err := roomserver.ParseRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", rec.EventID, err)
		}
		out = append(out, se.Event.JSON())
	}
	return out, nil
}

func eventIDs(recs []*storage.EventRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.EventID
	}
	return out
}
