package roomserver

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/myelin-chat/myelin/roomserver/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Received events: the same input path, entered with events another server
// built (federation /send, backfill, joins), following server-server-api
// "Checks performed on receipt of a PDU".

// InputResult is what became of one received event.
type InputResult struct {
	EventID string
	// Output is set when the event entered the room's timeline.
	Output *Output
	// Rejected is why the auth rules rejected the event (against its auth
	// events or the state before it). The event is stored, outside the
	// timeline, so that it is not fetched again.
	Rejected error
	// SoftFailed: the event passed the auth rules against the state before
	// it but not against the current state; it is stored outside the
	// timeline and never becomes a prev_event.
	SoftFailed bool
	// Duplicate: the event was stored already; nothing was done.
	Duplicate bool
	// Dropped is why the event was not stored at all: bad signatures, the
	// wrong room, or events it references that this server lacks
	// (*MissingEventsError: fetch them and input again).
	Dropped error
}

// MissingEventsError says which events an event references (as prev or
// auth events) that the server does not have, or has only as an outlier
// without state.
type MissingEventsError struct {
	IDs []string
}

func (e *MissingEventsError) Error() string {
	return "missing events: " + strings.Join(e.IDs, ", ")
}

// InputReceived puts events received from other servers through the input
// path, in the order given (parents first): signatures and content hash
// (an event whose hash does not match is kept redacted), auth against its
// auth events, auth against the state before it (resolved over its
// prev_events when it has several), soft-fail check against the current
// state, then, when accepted, the same persisting as a local event. The
// events must have been parsed with the room's version (pdu.ParseEvent).
//
// The error is for the whole call (unknown room, database failure); what
// happened to each event is in the results, in the same order.
func (rs *Roomserver) InputReceived(ctx context.Context, roomID string, events []*pdu.Event) ([]InputResult, error) {
	results := make([]InputResult, len(events))
	checked := make([]*pdu.Event, len(events))
	// Stage 1, outside the committer (fetching keys may take a while), for
	// all the events at once: the signature checks are CPU work that the
	// room's serialized input would otherwise wait for event after event.
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, ev := range events {
		results[i].EventID = ev.EventID()
		if ev.RoomID() != roomID {
			results[i].Dropped = &BadRequestError{Reason: fmt.Sprintf("event %s is in room %s, not %s", ev.EventID(), ev.RoomID(), roomID)}
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			good, err := rs.checkSignatures(ctx, ev)
			if err != nil {
				results[i].Dropped = err
				return
			}
			checked[i] = good
		})
	}
	wg.Wait()
	_, err := rs.submit(ctx, roomID, func(ctx context.Context, w *writer) ([]Output, error) {
		known, err := readJobEvents(ctx, w.tx, roomID, checked)
		if err != nil {
			return nil, err
		}
		var outs []Output
		for i, ev := range checked {
			if ev == nil {
				continue
			}
			r, err := w.inputReceived(ctx, roomID, ev, 0, known)
			if err != nil {
				return nil, err
			}
			r.EventID = results[i].EventID
			results[i] = r
			if r.Output != nil {
				outs = append(outs, *r.Output)
			}
		}
		return outs, nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// checkSignatures verifies the signatures the event must carry and its
// content hash; on a hash mismatch it returns the redacted event.
func (rs *Roomserver) checkSignatures(ctx context.Context, ev *pdu.Event) (*pdu.Event, error) {
	for _, server := range pdu.RequiredSigners(ev) {
		if err := rs.verifyOne(ctx, ev, server); err != nil {
			return nil, err
		}
	}
	if err := ev.CheckContentHash(); err != nil {
		if errors.Is(err, pdu.ErrContentHashMismatch) {
			return ev.Redacted(), nil
		}
		return nil, err
	}
	return ev, nil
}

// verifyOne checks that one of server's signatures on ev verifies.
func (rs *Roomserver) verifyOne(ctx context.Context, ev *pdu.Event, server string) error {
	sigs := ev.Signatures()[server]
	if len(sigs) == 0 {
		return fmt.Errorf("event %s: no signature of %s", ev.EventID(), server)
	}
	var lastErr error
	for keyID := range sigs {
		if !strings.HasPrefix(keyID, "ed25519:") {
			continue
		}
		var err error
		if server == rs.serverName {
			pub, ok := rs.keys.VerifyKey(keyID)
			if !ok {
				lastErr = fmt.Errorf("event %s: unknown key %s of this server", ev.EventID(), keyID)
				continue
			}
			err = ev.VerifySignature(server, keyID, pub)
		} else {
			if rs.serverKeys == nil {
				lastErr = fmt.Errorf("event %s: no way to fetch keys of %s", ev.EventID(), server)
				continue
			}
			// Room versions 1 to 4 ignore key validity periods.
			atTS := ev.OriginServerTS()
			if !ev.Version().EnforceKeyValidity {
				atTS = 0
			}
			pub, kerr := rs.serverKeys.VerifyKey(ctx, server, keyID, atTS)
			if kerr != nil {
				lastErr = fmt.Errorf("event %s: key %s of %s: %w", ev.EventID(), keyID, server, kerr)
				continue
			}
			err = ev.VerifySignature(server, keyID, pub)
		}
		if err == nil {
			return nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("event %s: no ed25519 signature of %s", ev.EventID(), server)
	}
	return lastErr
}

// inputReceived runs stages 2 to 5 for one received event, inside the
// batch. givenState, when not 0, is the snapshot of the state before the
// event, which this server cannot work out from prev events it lacks
// (InputWithState); else the prev events must be held. known holds the
// job's events and those they cite. Only database failures are returned as
// errors.
func (w *writer) inputReceived(ctx context.Context, roomID string, ev *pdu.Event, givenState int64, known *jobEvents) (InputResult, error) {
	var res InputResult
	rc, err := w.room(ctx, roomID)
	if err != nil {
		return res, err
	}
	if ev.Version() != rc.ver {
		res.Dropped = &BadRequestError{Reason: fmt.Sprintf("event %s has room version %s, the room %s", ev.EventID(), ev.Version().ID, rc.ver.ID)}
		return res, nil
	}
	// Stage 2 needs the auth events, which must all be known, and stage
	// 3 the prev events with their state, unless given it.
	authIDs := authIDsOf(ev, roomID)
	byID, err := known.records(ctx, w.tx, slices.Concat([]string{ev.EventID()}, authIDs, ev.PrevEventIDs()))
	if err != nil {
		return res, err
	}
	if byID[ev.EventID()] != nil {
		res.Duplicate = true
		return res, nil
	}
	authRecs, prevRecs := recordsOf(byID, authIDs), recordsOf(byID, ev.PrevEventIDs())
	if missing := missingIDs(authIDs, authRecs, false); len(missing) > 0 {
		res.Dropped = &MissingEventsError{IDs: missing}
		return res, nil
	}
	if givenState == 0 {
		if missing := missingIDs(ev.PrevEventIDs(), prevRecs, true); len(missing) > 0 {
			res.Dropped = &MissingEventsError{IDs: missing}
			return res, nil
		}
	}

	// Stage 2: the auth events. Those in the room's current state (the
	// usual case) are parsed already in the state cache.
	cached := w.rs.cache.get(rc.room.NID, rc.room.StateNID).byID()
	authEvents := make([]*pdu.Event, 0, len(authRecs))
	var rejectedAuth error
	for _, r := range authRecs {
		a := cached[r.EventID]
		if a == nil {
			if a, err = parseRecord(r); err != nil {
				return res, err
			}
		}
		if r.Rejected {
			rejectedAuth = &auth.NotAllowedError{Rule: "auth_events", Reason: "auth event " + r.EventID + " was rejected"}
		}
		authEvents = append(authEvents, a)
	}
	if rejectedAuth == nil {
		rejectedAuth = auth.CheckAuthEvents(ev, authEvents)
	}
	if rejectedAuth != nil {
		if _, ok := errors.AsType[*auth.MissingAuthEventsError](rejectedAuth); ok {
			res.Dropped = rejectedAuth
			return res, nil
		}
	}

	// Stage 3: the state before the event.
	before := givenState
	if before == 0 {
		if before, err = w.stateBefore(ctx, rc, prevRecs); err != nil {
			return res, err
		}
	}
	if rejectedAuth != nil {
		res.Rejected = rejectedAuth
		_, err := w.storeReceived(ctx, rc, ev, persistOpts{stateBefore: before, rejected: true}, known)
		return res, err
	}
	keys := authKeys(rc.ver, ev)
	// The usual case: the event extends the room's current state. Its
	// events at keys are then in the state cache (no reading and parsing
	// them per event), and stage 4 has nothing to add.
	extendsCurrent := before == rc.room.StateNID
	var stateBefore stateEvents
	if extendsCurrent {
		stateBefore, err = w.currentState(ctx, rc, keys)
	} else {
		stateBefore, err = w.snapshotState(ctx, before, keys)
	}
	if err != nil {
		return res, err
	}
	if err := auth.Check(ev, stateBefore.lookup); err != nil {
		res.Rejected = err
		_, err := w.storeReceived(ctx, rc, ev, persistOpts{stateBefore: before, rejected: true}, known)
		return res, err
	}

	// Stage 4: soft failure against the current state. An event of
	// another branch of the room may need that branch's state (a member
	// who joined there, or on the far side of a gap): as Synapse, the
	// current state it is held to is then that of the room with its
	// branch merged, the resolution of the forward extremities' states
	// and the state before it. (Checked only when the current state alone
	// fails it: a resolution costs more.)
	if !extendsCurrent {
		current, err := w.currentState(ctx, rc, keys)
		if err != nil {
			return res, err
		}
		if err := auth.Check(ev, current.lookup); err != nil {
			merged, merr := w.mergedState(ctx, rc, before, keys)
			if merr != nil {
				return res, merr
			}
			if err := auth.Check(ev, merged.lookup); err != nil {
				res.SoftFailed = true
				_, err := w.storeReceived(ctx, rc, ev, persistOpts{stateBefore: before, softFailed: true}, known)
				return res, err
			}
		}
	}

	// Stage 5.
	out, err := w.storeReceived(ctx, rc, ev, persistOpts{stateBefore: before}, known)
	if err != nil {
		return res, err
	}
	res.Output = out
	// Redactions that arrived before the event apply now.
	for _, r := range known.redactions[ev.EventID()] {
		red, err := parseRecord(r)
		if err != nil {
			return res, err
		}
		if err := w.applyRedaction(ctx, rc, red); err != nil {
			return res, err
		}
		known.stale[ev.EventID()] = true
	}
	return res, nil
}

// storeReceived persists ev as o says and tells known.
func (w *writer) storeReceived(ctx context.Context, rc *roomCtx, ev *pdu.Event, o persistOpts, known *jobEvents) (*Output, error) {
	out, err := w.persist(ctx, rc, ev, o)
	if err != nil {
		return nil, err
	}
	known.stored(rc, ev, o)
	return out, nil
}

// mergedState returns, at keys, the state of the room were a branch whose
// state is the snapshot branch merged into it: the resolution of the
// states after the forward extremities and branch.
func (w *writer) mergedState(ctx context.Context, rc *roomCtx, branch int64, keys []pdu.StateKey) (stateEvents, error) {
	nids := make([]int64, len(rc.extremities))
	for i, x := range rc.extremities {
		nids[i] = x.EventNID
	}
	recs, err := w.tx.EventsByNID(ctx, nids)
	if err != nil {
		return nil, err
	}
	snaps := []int64{branch}
	for _, r := range recs {
		snaps = append(snaps, r.StateAfterNID)
	}
	resolved, err := w.resolveSnapshots(ctx, rc, snaps)
	if err != nil {
		return nil, err
	}
	keyNIDs, err := w.tx.StateKeyNIDs(ctx, toStorageKeys(keys), false)
	if err != nil {
		return nil, err
	}
	var evNIDs []int64
	for _, k := range keyNIDs {
		if e := resolved[k]; e != 0 {
			evNIDs = append(evNIDs, e)
		}
	}
	evs, err := w.tx.EventsByNID(ctx, evNIDs)
	if err != nil {
		return nil, err
	}
	return parseState(evs)
}

// authKeys are the state keys the auth rules read for ev.
func authKeys(ver *pdu.RoomVersion, ev *pdu.Event) []pdu.StateKey {
	keys := auth.SelectAuthEvents(ver, ev.Type(), ev.StateKey(), ev.Sender(), ev.Content())
	if ver.CreateEventIsRoomID {
		keys = append(keys, pdu.StateKey{Type: "m.room.create"})
	}
	return keys
}

// stateBefore returns the snapshot of the state before an event whose prev
// events are prevs: the state after the one prev event, or a new snapshot
// of the resolution of the states after each.
func (w *writer) stateBefore(ctx context.Context, rc *roomCtx, prevs []*storage.EventRecord) (int64, error) {
	snaps := make([]int64, 0, len(prevs))
	for _, p := range prevs {
		if !contains64(snaps, p.StateAfterNID) {
			snaps = append(snaps, p.StateAfterNID)
		}
	}
	if len(snaps) == 1 {
		return snaps[0], nil
	}
	resolved, err := w.resolveSnapshots(ctx, rc, append([]int64(nil), snaps...))
	if err != nil {
		return 0, err
	}
	base, err := w.tx.Snapshot(ctx, snaps[0])
	if err != nil {
		return 0, err
	}
	return w.tx.NewSnapshot(ctx, rc.room.NID, snaps[0], diffState(base, resolved))
}

// recordsOf returns the records of ids that byID holds, each once.
func recordsOf(byID map[string]*storage.EventRecord, ids []string) []*storage.EventRecord {
	out := make([]*storage.EventRecord, 0, len(ids))
	for _, id := range ids {
		if r := byID[id]; r != nil && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// missingIDs returns those of ids that recs lacks (or, with needState,
// has only as outliers without state).
func missingIDs(ids []string, recs []*storage.EventRecord, needState bool) []string {
	have := make(map[string]bool, len(recs))
	for _, r := range recs {
		if !needState || (!r.Outlier && (r.StateAfterNID != 0 || r.Type == "m.room.create")) {
			have[r.EventID] = true
		}
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

func contains64(list []int64, v int64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
