package storage

// Queries on send-to-device messages (migrations/0014_e2ee.sql):
// to_device_messages waiting for local devices, to_device_txns for
// idempotent sends, and to_device_inbound (migrations/0016) for
// m.direct_to_device EDUs received. Messages for remote users go to the
// federation sender's queue (Tx.EnqueueEDU).

import (
	"context"
	"fmt"
	"time"
)

// toDeviceTxnLifetime is how long a /sendToDevice transaction ID is
// remembered: a client retries a failed request within seconds or minutes,
// not days.
const toDeviceTxnLifetime = 7 * 24 * time.Hour

// ClaimToDeviceTxn records the transaction ID of a /sendToDevice call by the
// device and reports whether it is new. A repeated ID means the messages
// were already queued: the call must succeed without queuing them again.
func (tx *Tx) ClaimToDeviceTxn(ctx context.Context, userID, deviceID, txnID string) (fresh bool, err error) {
	now := time.Now()
	if _, err := tx.q.ExecContext(ctx, `
		DELETE FROM to_device_txns WHERE user_id = $1 AND device_id = $2 AND created_ts < $3`,
		userID, deviceID, now.Add(-toDeviceTxnLifetime).UnixMilli()); err != nil {
		return false, fmt.Errorf("expire to-device transactions of %q %q: %w", userID, deviceID, err)
	}
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO to_device_txns (user_id, device_id, txn_id, created_ts) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, device_id, txn_id) DO NOTHING`, userID, deviceID, txnID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("to-device transaction %q of %q %q: %w", txnID, userID, deviceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("to-device transaction %q of %q %q: %w", txnID, userID, deviceID, err)
	}
	return n == 1, nil
}

// ClaimInboundToDevice records the message_id of an m.direct_to_device EDU
// from origin and reports whether it is new: an EDU sent again must not be
// delivered again.
func (tx *Tx) ClaimInboundToDevice(ctx context.Context, origin, messageID string) (fresh bool, err error) {
	now := time.Now()
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM to_device_inbound WHERE received_ts < $1`,
		now.Add(-toDeviceTxnLifetime).UnixMilli()); err != nil {
		return false, fmt.Errorf("expire received to-device message IDs: %w", err)
	}
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO to_device_inbound (origin, message_id, received_ts) VALUES ($1, $2, $3)
		ON CONFLICT (origin, message_id) DO NOTHING`, origin, messageID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("to-device message %q from %s: %w", messageID, origin, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("to-device message %q from %s: %w", messageID, origin, err)
	}
	return n == 1, nil
}

// ToDeviceDelivery is one message for one local device.
type ToDeviceDelivery struct {
	UserID, DeviceID string
	Content          []byte // a JSON object
}

// QueueToDevice stores messages of one sender and event type for local
// devices, at stream position pos (one position for the whole call: a device
// must get at most one message of it).
func (tx *Tx) QueueToDevice(ctx context.Context, pos int64, sender, eventType string, msgs []ToDeviceDelivery) error {
	for _, m := range msgs {
		_, err := tx.q.ExecContext(ctx, `
			INSERT INTO to_device_messages (user_id, device_id, stream_pos, sender, event_type, content)
			VALUES ($1, $2, $3, $4, $5, $6)`, m.UserID, m.DeviceID, pos, sender, eventType, string(m.Content))
		if err != nil {
			return fmt.Errorf("queue a to-device message for %q %q: %w", m.UserID, m.DeviceID, err)
		}
	}
	return nil
}

// ToDeviceMessage is a message waiting for a device.
type ToDeviceMessage struct {
	StreamPos int64
	Sender    string
	Type      string
	Content   []byte // a JSON object
}

// ToDeviceMessages returns the device's messages at stream positions in
// (after, upto], oldest first, at most limit.
func (db *DB) ToDeviceMessages(ctx context.Context, userID, deviceID string, after, upto int64, limit int) ([]ToDeviceMessage, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT stream_pos, sender, event_type, content FROM to_device_messages
		WHERE user_id = $1 AND device_id = $2 AND stream_pos > $3 AND stream_pos <= $4
		ORDER BY stream_pos LIMIT $5`, userID, deviceID, after, upto, limit)
	if err != nil {
		return nil, fmt.Errorf("to-device messages of %q %q: %w", userID, deviceID, err)
	}
	defer rows.Close()
	var out []ToDeviceMessage
	for rows.Next() {
		var (
			m       ToDeviceMessage
			content string
		)
		if err := rows.Scan(&m.StreamPos, &m.Sender, &m.Type, &content); err != nil {
			return nil, fmt.Errorf("to-device messages of %q %q: %w", userID, deviceID, err)
		}
		m.Content = []byte(content)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("to-device messages of %q %q: %w", userID, deviceID, err)
	}
	return out, nil
}

// DeleteToDeviceUpTo deletes the device's messages at stream positions up
// to upto: the client acknowledged them by syncing with a later token.
func (db *DB) DeleteToDeviceUpTo(ctx context.Context, userID, deviceID string, upto int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `
			DELETE FROM to_device_messages WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`,
			userID, deviceID, upto)
		if err != nil {
			return fmt.Errorf("delete delivered to-device messages of %q %q: %w", userID, deviceID, err)
		}
		return nil
	})
}
