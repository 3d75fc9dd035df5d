package storage

// Queries on dehydrated devices (MSC3814; migrations/0014_e2ee.sql,
// e2ee_dehydrated_devices). The device itself is a row of devices and its
// keys are in the key tables; this table says which device is the user's
// dehydrated one and holds its encrypted data.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// DehydratedDevice is a user's dehydrated device.
type DehydratedDevice struct {
	DeviceID string
	Data     []byte // device_data, a JSON object
}

// DehydratedDevice returns userID's dehydrated device, or an error
// wrapping ErrNotFound.
func (tx *Tx) DehydratedDevice(ctx context.Context, userID string) (*DehydratedDevice, error) {
	return dehydratedDevice(ctx, tx.q, userID)
}

// DehydratedDevice is Tx.DehydratedDevice outside a transaction.
func (db *DB) DehydratedDevice(ctx context.Context, userID string) (*DehydratedDevice, error) {
	return dehydratedDevice(ctx, db.read, userID)
}

func dehydratedDevice(ctx context.Context, q queryer, userID string) (*DehydratedDevice, error) {
	var (
		d    DehydratedDevice
		data string
	)
	err := q.QueryRowContext(ctx, `
		SELECT device_id, device_data FROM e2ee_dehydrated_devices WHERE user_id = $1`, userID).Scan(&d.DeviceID, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("dehydrated device of %q: %w", userID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dehydrated device of %q: %w", userID, err)
	}
	d.Data = []byte(data)
	return &d, nil
}

// SetDehydratedDevice records deviceID as userID's dehydrated device,
// replacing the record of any other (whose device the caller deletes).
func (tx *Tx) SetDehydratedDevice(ctx context.Context, userID string, d DehydratedDevice) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO e2ee_dehydrated_devices (user_id, device_id, device_data) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET device_id = excluded.device_id, device_data = excluded.device_data`,
		userID, d.DeviceID, string(d.Data))
	if err != nil {
		return fmt.Errorf("store the dehydrated device of %q: %w", userID, err)
	}
	return nil
}
