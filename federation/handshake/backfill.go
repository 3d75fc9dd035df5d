package handshake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/myelin-chat/myelin/roomserver/pdu"
)

// maxAuthFetches bounds the /event_auth requests of one backfill: the
// auth events of older history are mostly among the history itself or the
// state held since the join.
const maxAuthFetches = 5

// Backfill fetches up to limit events of the room's history from before
// the oldest event this server holds, from a server in the room
// (/backfill), with the auth chains it lacks to check them (/event_auth),
// and stores them as history (roomserver.InputHistorical). It returns how
// many events entered the timeline; 0 when there is nothing older or no
// server answered.
func (h *Handshaker) Backfill(ctx context.Context, roomID string, limit int) (int, error) {
	from, err := h.rs.BackfillPoints(ctx, roomID)
	if err != nil || len(from) == 0 {
		return 0, err
	}
	ver, err := h.rs.RoomVersion(ctx, roomID)
	if err != nil {
		return 0, err
	}
	servers, err := h.rs.JoinedServers(ctx, roomID)
	if err != nil {
		return 0, err
	}
	q := url.Values{"v": from, "limit": {strconv.Itoa(limit)}}
	path := "/_matrix/federation/v1/backfill/" + url.PathEscape(roomID) + "?" + q.Encode()
	var lastErr error
	for _, server := range servers {
		if server == h.serverName {
			continue
		}
		var txn struct {
			PDUs []json.RawMessage `json:"pdus"`
		}
		if err := h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &txn); err != nil {
			lastErr = err
			continue
		}
		events := parseAll(txn.PDUs, ver)
		chain, err := h.missingAuthChains(ctx, server, roomID, ver, events)
		if err != nil {
			return 0, err
		}
		return h.rs.InputHistorical(ctx, roomID, events, chain)
	}
	if lastErr != nil {
		h.logger.Info("backfill: no server answered", "room_id", roomID, "err", lastErr)
	}
	return 0, nil
}

// missingAuthChains fetches from server the auth chains of the events
// whose auth events this server lacks.
func (h *Handshaker) missingAuthChains(ctx context.Context, server, roomID string, ver *pdu.RoomVersion, events []*pdu.Event) ([]*pdu.Event, error) {
	missing, err := h.rs.MissingAuthEvents(ctx, events)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	need := map[string]bool{}
	for _, id := range missing {
		need[id] = true
	}
	var chain []*pdu.Event
	fetches := 0
	for _, ev := range events {
		wants := false
		for _, id := range ev.AuthEventIDs() {
			wants = wants || need[id]
		}
		if !wants || fetches == maxAuthFetches {
			continue
		}
		fetches++
		var resp struct {
			AuthChain []json.RawMessage `json:"auth_chain"`
		}
		path := "/_matrix/federation/v1/event_auth/" + url.PathEscape(roomID) + "/" + url.PathEscape(ev.EventID())
		if err := h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &resp); err != nil {
			h.logger.Info("backfill: fetching an auth chain", "event_id", ev.EventID(), "err", fmt.Sprint(err))
			continue
		}
		got := parseAll(resp.AuthChain, ver)
		chain = append(chain, got...)
		for _, a := range got {
			delete(need, a.EventID())
		}
		if len(need) == 0 {
			break
		}
	}
	return chain, nil
}
