package e2ee

// Received to-device messages (server-server-api "Send-to-device
// messaging"): an m.direct_to_device EDU from another server, delivered to
// our users' devices through the same inbox as local messages.

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// maxMessageIDLength bounds a received message_id (the spec says 32
// codepoints; some servers send longer ones).
const maxMessageIDLength = 255

// directToDevice is the content of an m.direct_to_device EDU.
type directToDevice struct {
	Sender    string                                `json:"sender"`
	Type      string                                `json:"type"`
	MessageID string                                `json:"message_id"`
	Messages  map[string]map[string]json.RawMessage `json:"messages"`
}

// ReceiveToDevice applies an m.direct_to_device EDU from origin (a
// federation.EDUHandler): the sender must be origin's user; messages for
// our users' devices ("*": all of them) are delivered once per origin and
// message_id, the others ignored. Its error is a fault of this server.
func (s *Service) ReceiveToDevice(ctx context.Context, origin string, content json.RawMessage) error {
	var m directToDevice
	if err := json.Unmarshal(content, &m); err != nil {
		ignoredEDU(ctx, origin, eduDirectToDevice, "malformed", "err", err)
		return nil
	}
	if _, server, ok := splitUserID(m.Sender); !ok || server != origin {
		ignoredEDU(ctx, origin, eduDirectToDevice, "the sender is not the origin's user", "sender", m.Sender)
		return nil
	}
	if m.Type == "" || len(m.Type) > maxEventTypeLength || m.MessageID == "" || len(m.MessageID) > maxMessageIDLength {
		ignoredEDU(ctx, origin, eduDirectToDevice, "no type or message_id, or one too long")
		return nil
	}
	n := 0
	for _, devices := range m.Messages {
		n += len(devices)
	}
	if n > MaxToDeviceMessages {
		ignoredEDU(ctx, origin, eduDirectToDevice, "too many messages", "count", n)
		return nil
	}
	users := make([]string, 0, len(m.Messages))
	for u := range m.Messages {
		if _, local := s.isLocal(u); local {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	var (
		pos        int64
		recipients []string
	)
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		pos, recipients = 0, nil
		fresh, err := tx.ClaimInboundToDevice(ctx, origin, m.MessageID)
		if err != nil || !fresh {
			return err
		}
		var deliveries []storage.ToDeviceDelivery
		for _, user := range users {
			lp, _ := s.isLocal(user)
			known, err := tx.ListDevices(ctx, lp)
			if err != nil {
				return err
			}
			msgs := map[string]json.RawMessage{}
			for device, c := range m.Messages[user] {
				if _, err := canonicalObject(c, "the message"); err == nil && device != "" {
					msgs[device] = c
				}
			}
			got := deliveriesFor(user, msgs, known)
			if len(got) > 0 {
				recipients = append(recipients, user)
			}
			deliveries = append(deliveries, got...)
		}
		if len(deliveries) == 0 {
			return nil
		}
		if pos, err = tx.NextStreamPos(ctx); err != nil {
			return err
		}
		return tx.QueueToDevice(ctx, pos, m.Sender, m.Type, deliveries)
	})
	if err != nil {
		return err
	}
	s.notifyUsers(ctx, pos, recipients)
	return nil
}

// ignoredEDU logs an EDU, or part of one, that is not applied.
func ignoredEDU(ctx context.Context, origin, eduType, why string, args ...any) {
	httputil.Logger(ctx).Log(ctx, slog.LevelInfo, "ignored part of an EDU: "+why,
		append([]any{"origin", origin, "edu_type", eduType}, args...)...)
}
