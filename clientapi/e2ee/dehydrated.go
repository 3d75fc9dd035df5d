package e2ee

// Dehydrated devices (MSC3814): a device kept on the server, encrypted by
// the client, that receives room keys while the user has no device logged
// in; a new login rehydrates it and reads its to-device messages.

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// DehydratedEventsLimit is how many to-device messages one call of
// /dehydrated_device/{device_id}/events returns.
const DehydratedEventsLimit = 100

// maxDeviceIDLength bounds client-chosen device IDs.
const maxDeviceIDLength = 255

// DehydratedDeviceRequest is the body of PUT /dehydrated_device.
type DehydratedDeviceRequest struct {
	DeviceID                 *string         `json:"device_id"`
	DeviceData               json.RawMessage `json:"device_data"`
	InitialDeviceDisplayName *string         `json:"initial_device_display_name"`
	UploadRequest
}

// PutDehydratedDevice makes the device of req userID's dehydrated device,
// with its keys, replacing any previous one (which is deleted with its keys
// and messages). Nothing is stored unless every key passes.
func (s *Service) PutDehydratedDevice(ctx context.Context, userID string, req *DehydratedDeviceRequest) (string, error) {
	lp, ok := s.isLocal(userID)
	if !ok {
		return "", httputil.Forbidden("not a local user")
	}
	if req.DeviceID == nil || *req.DeviceID == "" {
		return "", httputil.MissingParam(`"device_id" is required`)
	}
	deviceID := *req.DeviceID
	if len(deviceID) > maxDeviceIDLength {
		return "", httputil.InvalidParam("device_id is too long")
	}
	if len(req.DeviceData) == 0 || string(req.DeviceData) == "null" {
		return "", httputil.MissingParam(`"device_data" is required`)
	}
	data, err := canonicalObject(req.DeviceData, "device_data")
	if err != nil {
		return "", err
	}
	if len(req.DeviceKeys) == 0 || string(req.DeviceKeys) == "null" {
		return "", httputil.MissingParam(`"device_keys" is required: a dehydrated device must be able to receive keys`)
	}
	dk, err := checkDeviceKeys(req.DeviceKeys, userID, deviceID)
	if err != nil {
		return "", err
	}
	if len(req.OneTimeKeys) > MaxOneTimeKeysPerUpload || len(req.FallbackKeys) > maxFallbackKeysPerUpload {
		return "", httputil.InvalidParam("too many keys")
	}
	otks, err := checkOneTimeKeys(req.OneTimeKeys, userID, deviceID, dk.ed25519, false)
	if err != nil {
		return "", err
	}
	fallbacks, err := checkOneTimeKeys(req.FallbackKeys, userID, deviceID, dk.ed25519, true)
	if err != nil {
		return "", err
	}
	var pos int64
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		old, err := tx.DehydratedDevice(ctx, userID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		devices, err := tx.ListDevices(ctx, lp)
		if err != nil {
			return err
		}
		for _, d := range devices {
			if d.DeviceID == deviceID && (old == nil || old.DeviceID != deviceID) {
				return httputil.InvalidParam("device_id is the ID of one of your devices")
			}
		}
		if err := s.checkDeviceIDFree(ctx, tx, userID, deviceID); err != nil {
			return err
		}
		if old != nil {
			// The old dehydrated device goes, with what it received: a
			// new one (even under the same ID) has new keys.
			if _, err := tx.DeleteDevices(ctx, lp, []string{old.DeviceID}); err != nil {
				return err
			}
			if _, err := tx.ForgetDevices(ctx, userID, []string{old.DeviceID}); err != nil {
				return err
			}
		}
		if _, err := tx.UpsertDevice(ctx, lp, deviceID, req.InitialDeviceDisplayName); err != nil {
			return err
		}
		if err := tx.SetDehydratedDevice(ctx, userID, storage.DehydratedDevice{DeviceID: deviceID, Data: data}); err != nil {
			return err
		}
		if err := storeOneTimeKeys(ctx, tx, userID, deviceID, otks, fallbacks); err != nil {
			return err
		}
		if _, err := tx.SetDeviceKeys(ctx, userID, deviceID, dk.canonical); err != nil {
			return err
		}
		if pos, err = tx.MarkDeviceListChanged(ctx, userID); err != nil {
			return err
		}
		return tx.QueueDeviceListUpdates(ctx, userID, []string{deviceID})
	})
	if err != nil {
		return "", err
	}
	s.notifyDeviceListChange(ctx, userID, pos)
	return deviceID, nil
}

// DehydratedDevice returns userID's dehydrated device, or 404.
func (s *Service) DehydratedDevice(ctx context.Context, userID string) (*storage.DehydratedDevice, error) {
	d, err := s.db.DehydratedDevice(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, httputil.NotFound("no dehydrated device")
	}
	return d, err
}

// DeleteDehydratedDevice deletes userID's dehydrated device with its keys
// and messages and returns its ID, or 404 when there is none.
func (s *Service) DeleteDehydratedDevice(ctx context.Context, userID string) (string, error) {
	lp, ok := s.isLocal(userID)
	if !ok {
		return "", httputil.Forbidden("not a local user")
	}
	var (
		deviceID string
		pos      int64
	)
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		d, err := tx.DehydratedDevice(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return httputil.NotFound("no dehydrated device")
		}
		if err != nil {
			return err
		}
		deviceID = d.DeviceID
		if _, err := tx.DeleteDevices(ctx, lp, []string{d.DeviceID}); err != nil {
			return err
		}
		pos, err = tx.ForgetDevices(ctx, userID, []string{d.DeviceID})
		return err
	})
	if err != nil {
		return "", err
	}
	s.notifyDeviceListChange(ctx, userID, pos)
	return deviceID, nil
}

// DehydratedEvents returns the to-device messages of userID's dehydrated
// device deviceID after the token nextBatch ("" for the first call), at
// most DehydratedEventsLimit, and the token of the next call. Unlike /sync,
// reading does not delete: a rehydration that fails can start again.
// Another device ID is 403 M_FORBIDDEN.
func (s *Service) DehydratedEvents(ctx context.Context, userID, deviceID, nextBatch string) ([]storage.ToDeviceMessage, string, error) {
	d, err := s.DehydratedDevice(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if d.DeviceID != deviceID {
		return nil, "", httputil.Forbidden(deviceID + " is not your dehydrated device")
	}
	var after int64
	if nextBatch != "" {
		after, err = strconv.ParseInt(nextBatch, 10, 64)
		if err != nil || after < 0 {
			return nil, "", httputil.InvalidParam("invalid next_batch")
		}
	}
	msgs, err := s.db.ToDeviceMessages(ctx, userID, deviceID, after, math.MaxInt64, DehydratedEventsLimit)
	if err != nil {
		return nil, "", err
	}
	if len(msgs) > 0 {
		after = msgs[len(msgs)-1].StreamPos
	}
	return msgs, strconv.FormatInt(after, 10), nil
}
