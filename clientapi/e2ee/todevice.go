package e2ee

// Send-to-device messaging (client-server-api "Send-to-Device messaging"):
// PUT /sendToDevice/{eventType}/{txnId}.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver/pdu"
	"github.com/myelin-chat/myelin/storage"
)

// Bounds of one /sendToDevice call. Clients share a room key with every
// device of a room in calls of a few hundred messages.
const (
	MaxToDeviceMessages = 10000
	maxEventTypeLength  = 255
)

// AllDevices is the device ID that means every device of the user.
const AllDevices = "*"

// SendToDevice queues messages (user → device ID or "*" → content) of type
// eventType from sender's device senderDevice, once per transaction ID of
// that device: a repeated txnID succeeds without sending again.
//
// Messages for local devices are stored at one new stream position and
// their users' syncs woken. Unknown local users and devices are skipped:
// nothing would ever collect those messages. Messages for remote users
// become m.direct_to_device EDUs in the federation sender's durable queue,
// stored in the same transaction, so they are sent exactly when they are
// accepted, and once (federation_todevice.go receives them).
func (s *Service) SendToDevice(ctx context.Context, sender, senderDevice, eventType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if eventType == "" || len(eventType) > maxEventTypeLength {
		return httputil.InvalidParam("the event type must be 1 to 255 bytes long")
	}
	n := 0
	for user, devices := range messages {
		if _, _, ok := splitUserID(user); !ok {
			return httputil.InvalidParam(strconv.Quote(user) + " is not a user ID")
		}
		for device, content := range devices {
			if device == "" {
				return httputil.InvalidParam("an empty device ID for " + user)
			}
			if _, err := canonicalObject(content, "the message for "+user+" "+device); err != nil {
				return err
			}
		}
		n += len(devices)
	}
	if n > MaxToDeviceMessages {
		return httputil.InvalidParam("at most " + strconv.Itoa(MaxToDeviceMessages) + " messages per request")
	}
	users := make([]string, 0, len(messages))
	for u := range messages {
		users = append(users, u)
	}
	slices.Sort(users)

	var (
		pos        int64
		recipients []string
		servers    []string // remote servers with EDUs queued
	)
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		pos, recipients, servers = 0, nil, nil
		fresh, err := tx.ClaimToDeviceTxn(ctx, sender, senderDevice, txnID)
		if err != nil || !fresh {
			return err
		}
		var deliveries []storage.ToDeviceDelivery
		remote := map[string]map[string]map[string]json.RawMessage{} // server → user → device → content
		for _, user := range users {
			devices := messages[user]
			lp, local := s.isLocal(user)
			if !local {
				_, server, _ := splitUserID(user)
				if remote[server] == nil {
					remote[server] = map[string]map[string]json.RawMessage{}
				}
				remote[server][user] = devices
				continue
			}
			known, err := tx.ListDevices(ctx, lp)
			if err != nil {
				return err
			}
			got := deliveriesFor(user, devices, known)
			if len(got) > 0 {
				recipients = append(recipients, user)
			}
			deliveries = append(deliveries, got...)
		}
		for server, msgs := range remote {
			for _, edu := range toDeviceEDUs(sender, eventType, msgs) {
				if err := tx.EnqueueEDU(ctx, []string{server}, eduDirectToDevice, "", edu); err != nil {
					return err
				}
			}
			servers = append(servers, server)
		}
		if len(deliveries) == 0 {
			return nil
		}
		if pos, err = tx.NextStreamPos(ctx); err != nil {
			return err
		}
		return tx.QueueToDevice(ctx, pos, sender, eventType, deliveries)
	})
	if err != nil {
		return err
	}
	s.sendQueuedEDUs(ctx, servers)
	s.notifyUsers(ctx, pos, recipients)
	return nil
}

// deliveriesFor turns one user's messages into one per existing device: "*"
// reaches every device not addressed by its own ID in the same request, so
// no device gets two messages of one call.
func deliveriesFor(user string, msgs map[string]json.RawMessage, known []storage.Device) []storage.ToDeviceDelivery {
	exists := make(map[string]bool, len(known))
	for _, d := range known {
		exists[d.DeviceID] = true
	}
	var out []storage.ToDeviceDelivery
	for device, content := range msgs {
		if device != AllDevices && exists[device] {
			out = append(out, storage.ToDeviceDelivery{UserID: user, DeviceID: device, Content: compact(content)})
		}
	}
	if all, ok := msgs[AllDevices]; ok {
		for _, d := range known {
			if _, own := msgs[d.DeviceID]; !own {
				out = append(out, storage.ToDeviceDelivery{UserID: user, DeviceID: d.DeviceID, Content: compact(all)})
			}
		}
	}
	return out
}

// compact returns content (already checked to be a JSON object) in its
// canonical form.
func compact(content json.RawMessage) []byte {
	if c, err := pdu.CanonicalJSON(content); err == nil {
		return c
	}
	return content
}

// eduDirectToDevice carries to-device messages between servers.
const eduDirectToDevice = "m.direct_to_device"

// softMaxEDUBytes is the size the messages of one m.direct_to_device EDU
// are kept under, by splitting them among several EDUs (each with its own
// message_id): many servers refuse large transactions, and one /sendToDevice
// for a user with a hundred devices is already large. A single message
// larger than this goes alone.
const softMaxEDUBytes = 60000

// toDeviceEDUs returns the contents of the m.direct_to_device EDUs that
// carry msgs (user → device → content) of sender and eventType to one
// server.
func toDeviceEDUs(sender, eventType string, msgs map[string]map[string]json.RawMessage) [][]byte {
	var (
		out  [][]byte
		part = map[string]map[string]json.RawMessage{}
		size = 0
	)
	flush := func() {
		if len(part) == 0 {
			return
		}
		edu, err := json.Marshal(map[string]any{
			"sender": sender, "type": eventType, "message_id": newMessageID(), "messages": part,
		})
		if err == nil { // a map of checked JSON objects always marshals
			out = append(out, edu)
		}
		part, size = map[string]map[string]json.RawMessage{}, 0
	}
	for _, user := range slices.Sorted(maps.Keys(msgs)) {
		devices := msgs[user]
		for _, device := range slices.Sorted(maps.Keys(devices)) {
			content := compact(devices[device])
			n := len(user) + len(device) + len(content) + 8
			if size > 0 && size+n > softMaxEDUBytes {
				flush()
			}
			if part[user] == nil {
				part[user] = map[string]json.RawMessage{}
			}
			part[user][device] = content
			size += n
		}
	}
	flush()
	return out
}

// newMessageID returns a random message_id for an m.direct_to_device EDU.
func newMessageID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return pdu.EncodeBase64URL(b)
}
