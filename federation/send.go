package federation

// Receiving transactions (server-server-api "Transactions" and "PDUs"):
// PUT /_matrix/federation/v1/send/{txnId}. Each PDU goes through the
// roomserver's input path for received events (roomserver.InputReceived:
// signatures, content hash, auth, soft failure); gaps before an event are
// filled from the origin with /get_missing_events, and past what that
// fills the state before an event comes from the origin's /state
// (roomserver.InputWithState). A room's PDUs are
// handled in order, rooms in parallel. EDUs go to their handlers (edu.go)
// meanwhile, one after the other in their order.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

const (
	// MaxTransactionPDUs and MaxTransactionEDUs are the spec's limits on
	// one transaction.
	MaxTransactionPDUs = 50
	MaxTransactionEDUs = 100
	// MaxTransactionBytes bounds a /send body: 50 PDUs of at most 64 KiB
	// plus EDUs. Only this route gets it (limitBodies); the others keep
	// max_request_body_bytes.
	MaxTransactionBytes = 5 << 20

	// sendRoute names the /send route, for limitBodies.
	sendRoute = "federation-send"
	// roomWorkers bounds the rooms of one transaction handled at once.
	roomWorkers = 4
	// missingRounds bounds the /get_missing_events requests for one event;
	// each asks for missingLimit events (the most Synapse and Myelin
	// answer: 20), so the last 200 events of a gap are fetched. Past that (a
	// long outage), the oldest fetched events, or the event itself, are
	// taken in with the state before them from the origin (/state), at
	// most stateFetches of them per room and transaction (each answer may
	// be a big room's whole state); the rest of the gap stays for backfill.
	missingRounds = 10
	missingLimit  = MaxMissingEvents
	stateFetches  = 3
	// maxStateResponse and stateTimeout bound a /state answer: a big
	// room's state with its auth chain, as big as a send_join's.
	maxStateResponse = 512 << 20
	stateTimeout     = 5 * time.Minute
	// txnCacheSize bounds the answered transactions remembered per process.
	txnCacheSize = 1000
	// txnDeadline bounds the handling of one transaction. It does not end
	// with the request: a sender that gave up and retries finds the answer
	// in the cache.
	txnDeadline = 2 * time.Minute
)

func (a *API) registerSend(r *mux.Router) {
	r.HandleFunc("/_matrix/federation/v1/send/{txnId}", a.putSend).Methods(http.MethodPut).Name(sendRoute)
}

// MaxBodyBytes is the body limit the federation listener's middleware
// must allow (httputil.Options.MaxBodyBytes): the largest of any route's.
// limitBodies brings every route but /send back to generalLimit.
func MaxBodyBytes(generalLimit int64) int64 { return max(generalLimit, MaxTransactionBytes) }

// limitBodies is a router middleware giving /send MaxTransactionBytes and
// every other route the configured max_request_body_bytes.
func (a *API) limitBodies(next http.Handler) http.Handler {
	general := httputil.LimitBody(a.cfg.MaxRequestBodyBytes)(next)
	send := httputil.LimitBody(MaxTransactionBytes)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route := mux.CurrentRoute(r); route != nil && route.GetName() == sendRoute {
			send.ServeHTTP(w, r)
			return
		}
		general.ServeHTTP(w, r)
	})
}

// transactionBody is a /send request body.
type transactionBody struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus"`
}

// pduResult is one entry of the response's "pdus": {} or {"error": ...}.
type pduResult struct {
	Error string `json:"error,omitempty"`
}

// putSend implements PUT /_matrix/federation/v1/send/{txnId}.
func (a *API) putSend(w http.ResponseWriter, r *http.Request) {
	origin := Origin(r.Context())
	var body transactionBody
	if err := httputil.ReadJSON(r, &body); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	if err := checkTransaction(&body, origin); err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	key := origin + "\x00" + httputil.PathVar(r, "txnId")
	resp, err := a.txns.do(key, func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), txnDeadline)
		defer cancel()
		// EDUs need not wait for the PDUs, which may take long (missing
		// events fetched from the origin): a typing notification is
		// stale within seconds.
		eduErr := make(chan error, 1)
		go func() { eduErr <- a.handleEDUs(ctx, origin, body.EDUs) }()
		results, err := a.handlePDUs(ctx, origin, body.PDUs)
		if err := errors.Join(err, <-eduErr); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"pdus": results})
	})
	if err != nil {
		httputil.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// checkTransaction validates a transaction's shape, as Synapse: 400
// M_BAD_JSON for too many PDUs or EDUs, an origin other than the
// request's signer, or entries that are not objects.
func checkTransaction(b *transactionBody, origin string) error {
	if b.Origin != origin {
		return httputil.BadJSON(fmt.Sprintf("the transaction's origin %q is not the server that signed the request (%s)", b.Origin, origin))
	}
	if len(b.PDUs) > MaxTransactionPDUs || len(b.EDUs) > MaxTransactionEDUs {
		return httputil.BadJSON(fmt.Sprintf("a transaction holds at most %d PDUs and %d EDUs, not %d and %d", MaxTransactionPDUs, MaxTransactionEDUs, len(b.PDUs), len(b.EDUs)))
	}
	for what, list := range map[string][]json.RawMessage{"pdus": b.PDUs, "edus": b.EDUs} {
		for i, raw := range list {
			if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
				return httputil.BadJSON(fmt.Sprintf("%s[%d] is not a JSON object", what, i))
			}
		}
	}
	return nil
}

// roomPDUs are one room's PDUs of a transaction, in order.
type roomPDUs struct {
	roomID string
	raws   []json.RawMessage
}

// handlePDUs inputs the PDUs and returns the result of each, by event ID.
// The error is a fault of this server (the transaction is not answered).
func (a *API) handlePDUs(ctx context.Context, origin string, pdus []json.RawMessage) (map[string]pduResult, error) {
	results := map[string]pduResult{}
	var rooms []*roomPDUs
	byRoom := map[string]*roomPDUs{}
	for _, raw := range pdus {
		roomID := gjson.GetBytes(raw, "room_id")
		if roomID.Type != gjson.String {
			// Without a room there is no room version, hence no event
			// ID to answer about; Synapse ignores such PDUs too.
			httputil.Logger(ctx).InfoContext(ctx, "ignored a PDU without room_id", "origin", origin)
			continue
		}
		rp := byRoom[roomID.Str]
		if rp == nil {
			rp = &roomPDUs{roomID: roomID.Str}
			byRoom[roomID.Str] = rp
			rooms = append(rooms, rp)
		}
		rp.raws = append(rp.raws, raw)
	}

	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, roomWorkers)
	var wg sync.WaitGroup
	for _, rp := range rooms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := a.handleRoom(ctx, origin, rp)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			for id, r := range res {
				results[id] = r
			}
		}()
	}
	wg.Wait()
	return results, firstErr
}

// handleRoom inputs one room's PDUs in order.
func (a *API) handleRoom(ctx context.Context, origin string, rp *roomPDUs) (map[string]pduResult, error) {
	results := map[string]pduResult{}
	ver, err := a.rs.RoomVersion(ctx, rp.roomID)
	if err != nil {
		_, unsupported := errors.AsType[pdu.UnsupportedRoomVersionError](err)
		if !errors.Is(err, roomserver.ErrRoomNotFound) && !unsupported {
			return nil, err
		}
		// The event ID depends on the room version, which only the room
		// tells: name the PDUs as the default version would (right for
		// every version from 4 on), or by their event_id (1 and 2).
		why := "this server is not in room " + rp.roomID
		if !errors.Is(err, roomserver.ErrRoomNotFound) {
			why = "room " + rp.roomID + " has a room version this server does not support"
		}
		for _, raw := range rp.raws {
			if id := guessEventID(raw); id != "" {
				results[id] = pduResult{Error: why}
			}
		}
		return results, nil
	}

	var events []*pdu.Event
	for _, raw := range rp.raws {
		ev, err := pdu.ParseEvent(raw, ver)
		if err != nil {
			if id := guessEventID(raw); id != "" {
				results[id] = pduResult{Error: "invalid event: " + err.Error()}
			}
			continue
		}
		events = append(events, ev)
	}
	acl, err := a.rs.CurrentStateEvent(ctx, rp.roomID, pdu.StateKey{Type: "m.room.server_acl"})
	if err != nil {
		return nil, err
	}
	if acl != nil && !roomserver.ServerACLAllows(acl.Content(), origin) {
		for _, ev := range events {
			results[ev.EventID()] = pduResult{Error: "server " + origin + " is denied by the room's server ACL"}
		}
		return results, nil
	}
	if len(events) == 0 {
		return results, nil
	}

	inputs, err := a.rs.InputReceived(ctx, rp.roomID, events)
	if err != nil {
		return nil, err
	}
	stateBudget := stateFetches
	for i, res := range inputs {
		if missing, ok := errors.AsType[*roomserver.MissingEventsError](res.Dropped); ok && a.client != nil {
			// Fill the gap from the origin, then try again.
			if err := a.fetchMissing(ctx, origin, rp.roomID, ver, events[i], missing, &stateBudget); err != nil {
				return nil, err
			}
			again, err := a.rs.InputReceived(ctx, rp.roomID, events[i:i+1])
			if err != nil {
				return nil, err
			}
			res = again[0]
			if _, still := errors.AsType[*roomserver.MissingEventsError](res.Dropped); still {
				// Nothing fetched joins it to what we hold.
				if res, err = a.inputWithRemoteState(ctx, origin, rp.roomID, ver, events[i], res, &stateBudget); err != nil {
					return nil, err
				}
			}
		}
		results[res.EventID] = resultOf(res)
	}
	return results, nil
}

// resultOf is the /send answer for one input result. Soft-failed and
// duplicate events are answered {}, as Synapse: the sender did nothing
// wrong and has nothing to retry.
func resultOf(res roomserver.InputResult) pduResult {
	switch {
	case res.Rejected != nil:
		return pduResult{Error: "rejected: " + res.Rejected.Error()}
	case res.Dropped != nil:
		if m, ok := errors.AsType[*roomserver.MissingEventsError](res.Dropped); ok {
			return pduResult{Error: "could not get the events it references: " + m.Error()}
		}
		return pduResult{Error: res.Dropped.Error()}
	}
	return pduResult{}
}

// fetchMissing asks the origin for the events between what we hold and ev
// (/get_missing_events, walking back from ev a bounded number of rounds,
// never past our forward extremities), then inputs all of them at once,
// oldest first. It gathers before it inputs because an event of a gap is
// only accepted once everything before it is: input per round, a gap
// longer than one answer would drop every round's events. A failure to
// get them is not an error: ev is then reported as missing events. The
// error is a fault of this server.
func (a *API) fetchMissing(ctx context.Context, origin, roomID string, ver *pdu.RoomVersion, ev *pdu.Event, missing *roomserver.MissingEventsError, stateBudget *int) error {
	earliest := []string{}
	if room, err := a.db.Room(ctx, roomID); err == nil {
		ext, err := a.db.ForwardExtremities(ctx, room.NID)
		if err != nil {
			return err
		}
		for _, x := range ext {
			earliest = append(earliest, x.EventID)
		}
	}
	fetched := map[string]*pdu.Event{}
	latest := []string{ev.EventID()}
	for range missingRounds {
		var resp struct {
			Events []json.RawMessage `json:"events"`
		}
		req := map[string]any{"limit": missingLimit, "min_depth": 0, "earliest_events": earliest, "latest_events": latest}
		path := "/_matrix/federation/v1/get_missing_events/" + url.PathEscape(roomID)
		if err := a.client.DoJSON(ctx, http.MethodPost, origin, path, req, &resp); err != nil {
			httputil.Logger(ctx).InfoContext(ctx, "get_missing_events failed", "origin", origin, "room", roomID, "err", err)
			break
		}
		added := 0
		for _, raw := range resp.Events[:min(len(resp.Events), missingLimit)] {
			e, err := pdu.ParseEvent(raw, ver)
			if err != nil || e.RoomID() != roomID || fetched[e.EventID()] != nil {
				continue
			}
			fetched[e.EventID()] = e
			added++
		}
		if added == 0 {
			break
		}
		// Walk on from the fetched events whose prev events we neither
		// hold nor fetched.
		var err error
		if latest, err = a.unheldFrontier(ctx, fetched); err != nil {
			return err
		}
		if len(latest) == 0 {
			break
		}
	}
	if len(fetched) == 0 {
		return nil
	}
	got := make([]*pdu.Event, 0, len(fetched))
	for _, e := range fetched {
		got = append(got, e)
	}
	slices.SortStableFunc(got, oldestFirst)
	// The gap goes on past what was fetched: its oldest events come in
	// with the state before them from the origin, the rest after them.
	frontier, err := a.unheldFrontier(ctx, fetched)
	if err != nil {
		return err
	}
	if len(frontier) > 0 && len(frontier) <= *stateBudget {
		for _, id := range frontier {
			res, err := a.inputWithRemoteState(ctx, origin, roomID, ver, fetched[id], roomserver.InputResult{EventID: id}, stateBudget)
			if err != nil {
				return err
			}
			if res.Dropped != nil {
				break // the events after it are missing events too
			}
		}
		got = slices.DeleteFunc(got, func(e *pdu.Event) bool { return slices.Contains(frontier, e.EventID()) })
	}
	_, err = a.rs.InputReceived(ctx, roomID, got)
	return err
}

// oldestFirst orders events by depth, then event ID.
func oldestFirst(x, y *pdu.Event) int {
	if x.Depth() != y.Depth() {
		return int(x.Depth() - y.Depth())
	}
	return strings.Compare(x.EventID(), y.EventID())
}

// inputWithRemoteState asks the origin for the state before ev (GET
// /state?event_id=, with its auth chain) and inputs ev with it
// (roomserver.InputWithState), spending one of stateBudget. When the
// budget is spent or the origin cannot answer, the result is failed, what
// the caller had. The error is a fault of this server.
func (a *API) inputWithRemoteState(ctx context.Context, origin, roomID string, ver *pdu.RoomVersion, ev *pdu.Event, failed roomserver.InputResult, stateBudget *int) (roomserver.InputResult, error) {
	if *stateBudget <= 0 {
		return failed, nil
	}
	*stateBudget--
	path := "/_matrix/federation/v1/state/" + url.PathEscape(roomID) + "?event_id=" + url.QueryEscape(ev.EventID())
	answer, err := a.client.Do(ctx, fedclient.Request{Method: http.MethodGet, Destination: origin, Path: path,
		Timeout: stateTimeout, MaxResponseBytes: maxStateResponse})
	var resp struct {
		PDUs      []json.RawMessage `json:"pdus"`
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	if err == nil {
		err = json.Unmarshal(answer.Body, &resp)
	}
	if err != nil {
		httputil.Logger(ctx).InfoContext(ctx, "cannot get the state before an event past a gap", "origin", origin, "room", roomID, "event_id", ev.EventID(), "err", err)
		return failed, nil
	}
	parse := func(raws []json.RawMessage) []*pdu.Event {
		out := make([]*pdu.Event, 0, len(raws))
		for _, raw := range raws {
			if e, err := pdu.ParseEvent(raw, ver); err == nil {
				out = append(out, e)
			}
		}
		return out
	}
	return a.rs.InputWithState(ctx, roomID, ev, parse(resp.PDUs), parse(resp.AuthChain))
}

// unheldFrontier returns the fetched events that have a prev event that
// is neither fetched nor stored here.
func (a *API) unheldFrontier(ctx context.Context, fetched map[string]*pdu.Event) ([]string, error) {
	var prevs []string
	for _, e := range fetched {
		for _, p := range e.PrevEventIDs() {
			if fetched[p] == nil {
				prevs = append(prevs, p)
			}
		}
	}
	if len(prevs) == 0 {
		return nil, nil
	}
	recs, err := a.db.EventsByID(ctx, prevs)
	if err != nil {
		return nil, err
	}
	held := make(map[string]bool, len(recs))
	for _, r := range recs {
		held[r.EventID] = true
	}
	var frontier []string
	for id, e := range fetched {
		if slices.ContainsFunc(e.PrevEventIDs(), func(p string) bool { return fetched[p] == nil && !held[p] }) {
			frontier = append(frontier, id)
		}
	}
	slices.Sort(frontier)
	return frontier, nil
}

// guessEventID names a PDU whose room version is unknown: its event_id
// (room versions 1 and 2), else its ID under the default room version.
func guessEventID(raw []byte) string {
	if id := gjson.GetBytes(raw, "event_id"); id.Type == gjson.String {
		return id.Str
	}
	ver, err := pdu.GetRoomVersion(pdu.DefaultRoomVersion)
	if err != nil {
		return ""
	}
	ev, err := pdu.ParseEvent(raw, ver)
	if err != nil {
		return ""
	}
	return ev.EventID()
}
