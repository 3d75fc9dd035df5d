package syncapi

// End-to-end encryption in /sync: to_device (client-server-api
// "Send-to-Device messaging"), device_lists, device_one_time_keys_count and
// device_unused_fallback_key_types ("End-to-End Encryption", "Extensions to
// /sync"). clientapi/e2ee writes what these read.
//
// To-device messages are delivered in stream order, at most
// toDeviceLimit per response, and deleted once a later sync's since token
// is past them, which is how the client says it has them. They share the
// global stream position with everything else, so a response that must
// hold back messages covers the stream only up to its last message: the
// rest of the response (rooms, receipts, ...) is built up to there too, and
// the next sync carries on from it. One token position thus stays exact
// for every section.

import (
	"encoding/json"

	"github.com/myelin-chat/myelin/storage"
)

// toDeviceLimit is the spec's recommended bound of to-device messages per
// response.
const toDeviceLimit = 100

// defaultOneTimeKeyAlgorithm is always in device_one_time_keys_count, at 0
// when the device has none, as Synapse sends it: clients read its count
// without checking that it is there.
const defaultOneTimeKeyAlgorithm = "signed_curve25519"

// e2eeSections are the response's end-to-end encryption members; the
// response embeds them.
type e2eeSections struct {
	ToDevice               *eventBatch    `json:"to_device,omitempty"`
	DeviceLists            *deviceLists   `json:"device_lists,omitempty"`
	OneTimeKeysCount       map[string]int `json:"device_one_time_keys_count"`
	UnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
}

type deviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

// hasNews reports whether the sections hold something the client has not
// seen: key counts are repeated in every response and are not news.
func (s *e2eeSections) hasNews() bool { return s.ToDevice != nil || s.DeviceLists != nil }

// addE2EE builds the sections. It runs before the rest of the response,
// since it may lower b.upto (see the file comment). One query tells
// what changed; the others run only for what did.
func (b *syncBuilder) addE2EE() (e2eeSections, error) {
	var s e2eeSections
	user, device := b.req.userID, b.req.deviceID
	since := b.since
	if since == 0 {
		since = b.upto // device_lists are for incremental syncs only
	}
	st, err := b.a.db.SyncE2EE(b.ctx, user, device, since, b.upto)
	if err != nil {
		return s, err
	}
	s.OneTimeKeysCount = st.Counts.OneTimeKeys
	if _, ok := s.OneTimeKeysCount[defaultOneTimeKeyAlgorithm]; !ok {
		s.OneTimeKeysCount[defaultOneTimeKeyAlgorithm] = 0
	}
	// Required, even when empty ([] rather than absent).
	s.UnusedFallbackKeyTypes = st.Counts.UnusedFallback

	if st.ToDeviceWaiting {
		msgs, err := b.toDeviceMessages()
		if err != nil {
			return s, err
		}
		if len(msgs) > toDeviceLimit {
			msgs = msgs[:toDeviceLimit]
			b.upto = msgs[len(msgs)-1].StreamPos
		}
		if len(msgs) > 0 {
			events := make([]json.RawMessage, len(msgs))
			for i, m := range msgs {
				events[i] = toDeviceEvent(m)
			}
			s.ToDevice = &eventBatch{Events: events}
		}
	}

	if b.since == 0 {
		return s, nil
	}
	var changed, left []string
	if b.upto < st.Upto() {
		// The window shrank to hold back to-device messages.
		changed, left, err = b.a.db.DeviceListChanges(b.ctx, user, b.since, b.upto)
	} else {
		changed, left, err = st.DeviceLists(b.ctx)
	}
	if err != nil {
		return s, err
	}
	if len(changed)+len(left) > 0 {
		if changed == nil {
			changed = []string{}
		}
		if left == nil {
			left = []string{}
		}
		s.DeviceLists = &deviceLists{Changed: changed, Left: left}
	}
	return s, nil
}

// toDeviceMessages returns the device's messages after the since token up
// to b.upto, one more than the limit when there are that many. Messages at
// or before since were delivered by the response that token came from:
// they are deleted first.
func (b *syncBuilder) toDeviceMessages() ([]storage.ToDeviceMessage, error) {
	user, device := b.req.userID, b.req.deviceID
	// One read finds both: the oldest messages waiting, delivered or not.
	msgs, err := b.a.db.ToDeviceMessages(b.ctx, user, device, 0, b.upto, toDeviceLimit+1)
	if err != nil || len(msgs) == 0 || b.since == 0 || msgs[0].StreamPos > b.since {
		return msgs, err
	}
	if err := b.a.db.DeleteToDeviceUpTo(b.ctx, user, device, b.since); err != nil {
		return nil, err
	}
	return b.a.db.ToDeviceMessages(b.ctx, user, device, b.since, b.upto, toDeviceLimit+1)
}

func toDeviceEvent(m storage.ToDeviceMessage) json.RawMessage {
	b, _ := json.Marshal(struct {
		Sender  string          `json:"sender"`
		Type    string          `json:"type"`
		Content json.RawMessage `json:"content"`
	}{m.Sender, m.Type, m.Content})
	return b
}
