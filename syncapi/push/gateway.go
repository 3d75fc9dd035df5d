package push

// The Push Gateway API's POST /_matrix/push/v1/notify, as a homeserver
// sends it (push-gateway-api.md, push_notifier.yaml), and the HTTP client
// that sends it.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/tidwall/gjson"

	"github.com/myelin-chat/myelin/storage"
)

// ErrAddressRefused is returned (wrapped) for a connection to a push
// gateway at an address the server refuses (push_allow_private_addresses).
var ErrAddressRefused = errors.New("push gateway address refused")

// NewGatewayClient returns the HTTP client for push gateways. refuse, when
// not nil, is asked about every address before connecting to it (after DNS
// resolution, so a name cannot smuggle a private address in); an error
// refuses it. insecureSkipVerify does not check gateways' certificates.
func NewGatewayClient(refuse func(netip.Addr) error, insecureSkipVerify bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if refuse != nil {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %q", ErrAddressRefused, address)
			}
			if err := refuse(ap.Addr()); err != nil {
				return fmt.Errorf("%w: %s is a private or reserved address (push_allow_private_addresses allows it)",
					ErrAddressRefused, ap.Addr())
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			// Gateways are reached directly, as other servers are: a
			// proxy would defeat the address check.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify},
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		// Pushes are not redirected: a redirect could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// notification is the "notification" object of /notify.
type notification struct {
	EventID           string          `json:"event_id,omitempty"`
	RoomID            string          `json:"room_id,omitempty"`
	Type              string          `json:"type,omitempty"`
	Sender            string          `json:"sender,omitempty"`
	SenderDisplayName string          `json:"sender_display_name,omitempty"`
	RoomName          string          `json:"room_name,omitempty"`
	RoomAlias         string          `json:"room_alias,omitempty"`
	UserIsTarget      bool            `json:"user_is_target,omitempty"`
	Prio              string          `json:"prio,omitempty"`
	Content           json.RawMessage `json:"content,omitempty"`
	Counts            counts          `json:"counts"`
	Devices           []device        `json:"devices"`
}

type counts struct {
	// Unread is every unread notification of the user, in every room;
	// zero is left out, as the spec asks.
	Unread int `json:"unread,omitempty"`
}

type device struct {
	AppID     string          `json:"app_id"`
	Pushkey   string          `json:"pushkey"`
	PushkeyTS int64           `json:"pushkey_ts"` // seconds
	Data      json.RawMessage `json:"data,omitempty"`
	Tweaks    json.RawMessage `json:"tweaks,omitempty"`
}

// push sends one queued push to the pusher's gateway.
func (s *Service) push(ctx context.Context, p *storage.Pusher, q *storage.QueuedPush) (outcome, error) {
	n, err := s.buildNotification(ctx, p, q)
	if err != nil {
		return retry, err
	}
	body, err := json.Marshal(map[string]any{"notification": n})
	if err != nil {
		return drop, err
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return retry, ctx.Err()
	}
	defer func() { <-s.sem }()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return drop, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, ErrAddressRefused) {
			return drop, err
		}
		return retry, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case err != nil:
		return retry, err
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return retry, fmt.Errorf("push gateway answered %d", resp.StatusCode)
	case resp.StatusCode/100 != 2:
		return drop, fmt.Errorf("push gateway answered %d", resp.StatusCode)
	}
	var rejectedKeys []string
	gjson.GetBytes(raw, "rejected").ForEach(func(_, v gjson.Result) bool {
		rejectedKeys = append(rejectedKeys, v.Str)
		return true
	})
	if slices.Contains(rejectedKeys, p.Pushkey) {
		return rejected, nil
	}
	return sent, nil
}

// buildNotification builds the notification of a queued push: the event's
// fields unless the pusher's format is event_id_only, the user's unread
// count, and the pusher as the one device.
func (s *Service) buildNotification(ctx context.Context, p *storage.Pusher, q *storage.QueuedPush) (*notification, error) {
	unread, err := s.cfg.DB.UnreadTotal(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	dev := device{AppID: p.AppID, Pushkey: p.Pushkey, PushkeyTS: p.PushkeyTS / 1000, Data: dataWithoutURL(p.Data)}
	n := &notification{Counts: counts{Unread: unread}}
	if q.EventID == "" {
		// A count update alone (the user read something).
		n.Prio = "low"
		n.Devices = []device{dev}
		return n, nil
	}
	dev.Tweaks = json.RawMessage(q.Tweaks)
	n.Devices = []device{dev}
	n.EventID, n.RoomID = q.EventID, q.RoomID
	tweaks := gjson.ParseBytes(q.Tweaks)
	n.Prio = "low"
	if tweaks.Get("sound").Exists() || tweaks.Get("highlight").Bool() {
		n.Prio = "high"
	}
	if gjson.GetBytes(p.Data, "format").Str == "event_id_only" {
		return n, nil
	}
	recs, err := s.cfg.DB.EventsByID(ctx, []string{q.EventID})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return n, nil
	}
	ev := recs[0]
	n.Type, n.Sender = ev.Type, ev.Sender
	if c := gjson.GetBytes(ev.JSON, "content"); c.IsObject() {
		n.Content = json.RawMessage(c.Raw)
	}
	n.UserIsTarget = ev.StateKey != nil && *ev.StateKey == p.UserID && ev.Type == "m.room.member"
	if ev.Type == "m.room.encrypted" {
		n.Prio = "high"
	}
	if room, err := s.cfg.DB.Room(ctx, q.RoomID); err == nil {
		state, err := s.cfg.DB.CurrentStateEvents(ctx, room.NID, []storage.StateKey{
			{Type: "m.room.name"}, {Type: "m.room.canonical_alias"}, {Type: "m.room.member", StateKey: ev.Sender},
		})
		if err != nil {
			return nil, err
		}
		for _, st := range state {
			switch st.Type {
			case "m.room.name":
				n.RoomName = gjson.GetBytes(st.JSON, "content.name").Str
			case "m.room.canonical_alias":
				n.RoomAlias = gjson.GetBytes(st.JSON, "content.alias").Str
			case "m.room.member":
				n.SenderDisplayName = gjson.GetBytes(st.JSON, "content.displayname").Str
			}
		}
	}
	return n, nil
}

// dataWithoutURL is the pusher's data minus url, which the spec says to
// forward to the gateway.
func dataWithoutURL(data []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	delete(m, "url")
	out, _ := json.Marshal(m)
	return out
}
