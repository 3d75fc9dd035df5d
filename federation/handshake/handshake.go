// Package handshake is what the client API asks of other servers: the
// joining side of the Server-Server API's membership handshakes (a local
// user joins, knocks on or leaves a room this server is not in through
// make_join/send_join, make_knock/send_knock, make_leave/send_leave with a
// server that is; and invites a user of another server, whose server
// countersigns the invite), the resolution of other servers' room
// aliases, and the listing of their published room directories.
//
// The client API calls it when the roomserver cannot build the event
// itself; what comes back enters the roomserver like any other event
// (ImportJoin, StoreOutOfBand, InputReceived). Failures are
// *httputil.Error values the client API can answer with: the remote
// server's own refusal when it gave one.
package handshake

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myelin-chat/myelin/federation/fedclient"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/internal/keys"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

const (
	// joinTimeout and maxJoinResponse bound send_join, whose answer is the
	// whole room state and auth chain: a room of 100,000 members is tens
	// of megabytes.
	joinTimeout     = 5 * time.Minute
	maxJoinResponse = 512 << 20
	// maxServersTried bounds the servers asked for one handshake.
	maxServersTried = 10
)

// ErrNoServer: no server could be asked (the list was empty or named only
// this server).
var ErrNoServer = errors.New("no server to ask")

// Deps is what a Handshaker is built from.
type Deps struct {
	Client     *fedclient.Client
	Roomserver *roomserver.Roomserver
	Keys       *keys.Ring
	ServerName string
	Logger     *slog.Logger
}

// Handshaker runs the handshakes. It is safe for concurrent use.
type Handshaker struct {
	fed        *fedclient.Client
	rs         *roomserver.Roomserver
	keys       *keys.Ring
	serverName string
	logger     *slog.Logger
}

// New builds a Handshaker.
func New(d Deps) *Handshaker {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Handshaker{fed: d.Client, rs: d.Roomserver, keys: d.Keys, serverName: d.ServerName, logger: logger}
}

// clientError turns the failure of a request to another server into the
// client API's answer: the remote server's refusal (a 4xx with a Matrix
// error) as it was; anything else (unreachable, a 5xx, an invalid answer)
// as 404 M_NOT_FOUND, as Synapse answers when no server could be used: the
// room or alias was not found anywhere this server could ask.
func clientError(op string, err error) error {
	if errors.Is(err, ErrNoServer) {
		return httputil.NotFound(op + ": no server in the room is known to ask")
	}
	if fe, ok := errors.AsType[*fedclient.Error](err); ok && fe.Status >= 400 && fe.Status < 500 && fe.Code != "" {
		return httputil.NewError(fe.Status, fe.Code, fmt.Sprintf("%s: %s answered: %s", op, fe.Destination, fe.Message))
	}
	if he, ok := errors.AsType[*httputil.Error](err); ok {
		return he
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return httputil.NotFound(op + ": no server could be used: " + err.Error())
}

// Join joins the local user to the room through the first of servers that
// lets them: make_join, the user's event signed by this server, send_join,
// and the answer (room state and auth chain) imported by the roomserver.
// content is added to the join's content (displayname, avatar_url,
// reason); the membership and the authorising user are the resident
// server's.
func (h *Handshaker) Join(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error {
	return h.each("join", servers, func(server string) error {
		ev, err := h.make(ctx, server, "join", roomID, userID, content)
		if err != nil {
			return err
		}
		return h.sendJoin(ctx, server, ev)
	})
}

// Knock knocks on the room for the local user through one of servers; the
// knock is kept out of band with the room's stripped state the resident
// server answers with.
func (h *Handshaker) Knock(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error {
	return h.each("knock", servers, func(server string) error {
		ev, err := h.make(ctx, server, "knock", roomID, userID, content)
		if err != nil {
			return err
		}
		var resp struct {
			KnockRoomState []json.RawMessage `json:"knock_room_state"`
		}
		path := "/_matrix/federation/v1/send_knock/" + url.PathEscape(roomID) + "/" + url.PathEscape(ev.EventID())
		if err := h.fed.DoJSON(ctx, http.MethodPut, server, path, json.RawMessage(ev.JSON()), &resp); err != nil {
			return err
		}
		return h.storeOutOfBand(ctx, ev, resp.KnockRoomState)
	})
}

// Leave makes the local user leave a room this server is not in (rejecting
// an invite, retracting a knock) through one of servers, and keeps the
// leave out of band.
func (h *Handshaker) Leave(ctx context.Context, roomID, userID string, content map[string]any, servers []string) error {
	return h.each("leave", servers, func(server string) error {
		ev, err := h.make(ctx, server, "leave", roomID, userID, content)
		if err != nil {
			return err
		}
		path := "/_matrix/federation/v2/send_leave/" + url.PathEscape(roomID) + "/" + url.PathEscape(ev.EventID())
		if err := h.fed.DoJSON(ctx, http.MethodPut, server, path, json.RawMessage(ev.JSON()), nil); err != nil {
			if !unrecognised(err) {
				return err
			}
			v1 := strings.Replace(path, "/v2/", "/v1/", 1)
			if err := h.fed.DoJSON(ctx, http.MethodPut, server, v1, json.RawMessage(ev.JSON()), nil); err != nil {
				return err
			}
		}
		return h.storeOutOfBand(ctx, ev, nil)
	})
}

// Invite invites a user of another server: the invite is built on the
// room's current state, countersigned by the invitee's server (which keeps
// it for its user) and then put through the input path, from where the
// federation sender sends it to the room. It returns the event ID.
func (h *Handshaker) Invite(ctx context.Context, roomID, sender, target string, content map[string]any) (string, error) {
	raw, err := json.Marshal(content)
	if err != nil {
		return "", err
	}
	ev, err := h.rs.BuildEvent(ctx, roomID, roomserver.EventRequest{Type: "m.room.member", StateKey: &target, Sender: sender, Content: raw})
	if err != nil {
		return "", err
	}
	stripped, err := h.rs.StrippedState(ctx, roomID)
	if err != nil {
		return "", err
	}
	server := pdu.DomainOf(target)
	body := map[string]any{"room_version": ev.Version().ID, "event": json.RawMessage(ev.JSON()), "invite_room_state": stripped}
	path := "/_matrix/federation/v2/invite/" + url.PathEscape(roomID) + "/" + url.PathEscape(ev.EventID())
	var resp struct {
		Event json.RawMessage `json:"event"`
	}
	if err := h.fed.DoJSON(ctx, http.MethodPut, server, path, body, &resp); err != nil {
		return "", clientError("invite", err)
	}
	signed, err := pdu.ParseEvent(resp.Event, ev.Version())
	if err != nil {
		return "", clientError("invite", fmt.Errorf("%s answered with an invalid event: %w", server, err))
	}
	if signed.EventID() != ev.EventID() {
		return "", clientError("invite", fmt.Errorf("%s answered with event %s, not the invite %s", server, signed.EventID(), ev.EventID()))
	}
	results, err := h.rs.InputReceived(ctx, roomID, []*pdu.Event{signed})
	if err != nil {
		return "", err
	}
	switch res := results[0]; {
	case res.Dropped != nil:
		return "", res.Dropped
	case res.Rejected != nil:
		return "", res.Rejected
	case res.SoftFailed:
		return "", fmt.Errorf("the invite of %s is no longer allowed by the room's state", target)
	}
	return signed.EventID(), nil
}

// each runs try with each distinct server of servers but this one, until
// one succeeds; the error is the last server's.
func (h *Handshaker) each(op string, servers []string, try func(server string) error) error {
	var lastErr error = ErrNoServer
	tried := map[string]bool{h.serverName: true}
	for _, s := range servers {
		if tried[s] || len(tried) > maxServersTried {
			continue
		}
		tried[s] = true
		err := try(s)
		if err == nil {
			return nil
		}
		h.logger.Info("membership handshake failed", "op", op, "server", s, "err", err)
		lastErr = err
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	return clientError(op, lastErr)
}

// make asks server for the template of userID's membership event (make_join,
// make_knock, make_leave), checks that it is the event asked for, and
// signs it with content added.
func (h *Handshaker) make(ctx context.Context, server, membership, roomID, userID string, content map[string]any) (*pdu.Event, error) {
	q := url.Values{}
	if membership != "leave" {
		q["ver"] = pdu.KnownRoomVersions()
	}
	path := "/_matrix/federation/v1/make_" + membership + "/" + url.PathEscape(roomID) + "/" + url.PathEscape(userID)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp struct {
		RoomVersion *string         `json:"room_version"`
		Event       json.RawMessage `json:"event"`
	}
	if err := h.fed.DoJSON(ctx, http.MethodGet, server, path, nil, &resp); err != nil {
		return nil, err
	}
	verID := "1" // make_leave (and old servers) leave it out
	if resp.RoomVersion != nil {
		verID = *resp.RoomVersion
	} else if v, err := h.rs.RoomVersion(ctx, roomID); err == nil {
		verID = v.ID
	}
	ver, err := pdu.GetRoomVersion(verID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	if len(resp.Event) == 0 {
		return nil, fmt.Errorf("%s answered make_%s without an event", server, membership)
	}
	pe, err := pdu.ParseTemplate(resp.Event, ver)
	if err != nil {
		return nil, fmt.Errorf("%s's make_%s template: %w", server, membership, err)
	}
	var tc map[string]any
	if err := json.Unmarshal(pe.Content, &tc); err != nil {
		return nil, fmt.Errorf("%s's make_%s template content: %w", server, membership, err)
	}
	if pe.RoomID != roomID || pe.Sender != userID || pe.StateKey == nil || *pe.StateKey != userID ||
		pe.Type != "m.room.member" || tc["membership"] != membership {
		return nil, fmt.Errorf("%s's make_%s template is not %s's %s in %s", server, membership, userID, membership, roomID)
	}
	for k, v := range content {
		if k != "membership" && k != "join_authorised_via_users_server" {
			tc[k] = v
		}
	}
	if pe.Content, err = json.Marshal(tc); err != nil {
		return nil, err
	}
	pe.OriginServerTS = time.Now().UnixMilli()
	if ver.EventIDs == pdu.EventIDOpaque {
		pe.EventID = "$" + rand.Text() + ":" + h.serverName
	}
	keyID, key := h.keys.Current()
	return pe.Build(ver, h.serverName, keyID, key)
}

// sendJoinResponse is the answer to send_join (v2, or v1's second element).
type sendJoinResponse struct {
	State     []json.RawMessage `json:"state"`
	AuthChain []json.RawMessage `json:"auth_chain"`
	Event     json.RawMessage   `json:"event"`
}

// sendJoin sends the signed join to server and imports the room from its
// answer.
func (h *Handshaker) sendJoin(ctx context.Context, server string, ev *pdu.Event) error {
	path := "/_matrix/federation/v2/send_join/" + url.PathEscape(ev.RoomID()) + "/" + url.PathEscape(ev.EventID())
	req := fedclient.Request{Method: http.MethodPut, Destination: server, Path: path, Body: ev.JSON(),
		Timeout: joinTimeout, MaxResponseBytes: maxJoinResponse}
	var resp sendJoinResponse
	answer, err := h.fed.Do(ctx, req)
	if err != nil && unrecognised(err) {
		req.Path = strings.Replace(path, "/v2/", "/v1/", 1)
		if answer, err = h.fed.Do(ctx, req); err == nil {
			var v1 []json.RawMessage
			if err := json.Unmarshal(answer.Body, &v1); err != nil || len(v1) != 2 {
				return fmt.Errorf("%s: the v1 send_join answer is not [status, body]", server)
			}
			answer.Body = v1[1]
		}
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(answer.Body, &resp); err != nil {
		return fmt.Errorf("%s: the send_join answer is not the JSON expected: %w", server, err)
	}
	join := ev
	if len(resp.Event) > 0 {
		// The resident server's copy carries its signature (restricted
		// rooms); it must be our event.
		signed, err := pdu.ParseEvent(resp.Event, ev.Version())
		if err != nil || signed.EventID() != ev.EventID() {
			return fmt.Errorf("%s answered send_join with another event than the join %s", server, ev.EventID())
		}
		join = signed
	}
	state := parseAll(resp.State, ev.Version())
	chain := parseAll(resp.AuthChain, ev.Version())
	_, err = h.rs.ImportJoin(ctx, join, state, chain)
	if errors.Is(err, roomserver.ErrDuplicate) {
		return nil
	}
	return err
}

// storeOutOfBand keeps a membership event of a room this server is not in.
func (h *Handshaker) storeOutOfBand(ctx context.Context, ev *pdu.Event, roomState []json.RawMessage) error {
	_, err := h.rs.StoreOutOfBand(ctx, ev, roomState)
	if errors.Is(err, roomserver.ErrDuplicate) {
		return nil
	}
	return err
}

// parseAll parses the events of an answer, leaving out those that are not
// valid events of the version (the import checks the rest).
func parseAll(raws []json.RawMessage, ver *pdu.RoomVersion) []*pdu.Event {
	out := make([]*pdu.Event, 0, len(raws))
	for _, raw := range raws {
		if ev, err := pdu.ParseEvent(raw, ver); err == nil {
			out = append(out, ev)
		}
	}
	return out
}

// unrecognised reports whether a server answered that it does not know
// the endpoint (an older server, for the v2 endpoints).
func unrecognised(err error) bool {
	fe, ok := errors.AsType[*fedclient.Error](err)
	return ok && (fe.Code == "M_UNRECOGNIZED" || (fe.Status == http.StatusNotFound && fe.Code == ""))
}
