package e2ee

// Received device list and cross-signing key updates (server-server-api
// "Device Management", "End-to-End Encryption"): other servers' users'
// device lists are cached here, in the tables that hold our users' keys,
// for the remote users who share a room with one of ours (their servers
// send us updates only while they do). /keys/query answers from the cache
// when it is complete (query.go); an update that does not follow the last
// one applied (prev_id) marks the list stale, and it is fetched whole
// again (resync.go). Either way a device list change is recorded, so that
// /sync tells our users who share a room with that user.

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/myelin-chat/myelin/storage"
)

// deviceListUpdate is the content of an m.device_list_update EDU.
type deviceListUpdate struct {
	UserID      string          `json:"user_id"`
	DeviceID    string          `json:"device_id"`
	DisplayName *string         `json:"device_display_name"`
	StreamID    int64           `json:"stream_id"`
	PrevID      []int64         `json:"prev_id"`
	Deleted     bool            `json:"deleted"`
	Keys        json.RawMessage `json:"keys"`
}

// ReceiveDeviceListUpdate applies an m.device_list_update EDU from origin
// (a federation.EDUHandler). The user must be origin's and share a room
// with one of our users. When every prev_id is the stream_id of the last
// update applied, the device's entry in the cache is replaced; otherwise an
// update was missed, and the list is marked stale and fetched again.
func (s *Service) ReceiveDeviceListUpdate(ctx context.Context, origin string, content json.RawMessage) error {
	var u deviceListUpdate
	if err := json.Unmarshal(content, &u); err != nil {
		ignoredEDU(ctx, origin, eduDeviceListUpdate, "malformed", "err", err)
		return nil
	}
	if _, server, ok := splitUserID(u.UserID); !ok || server != origin || u.DeviceID == "" {
		ignoredEDU(ctx, origin, eduDeviceListUpdate, "not a device of the origin's user", "user", u.UserID)
		return nil
	}
	var keys []byte
	if !u.Deleted && len(u.Keys) > 0 && string(u.Keys) != "null" {
		canon, err := canonicalObject(u.Keys, "keys", "unsigned")
		if err != nil || !keyOwnedBy(canon, u.UserID, u.DeviceID) {
			ignoredEDU(ctx, origin, eduDeviceListUpdate, "keys not of the device", "user", u.UserID, "device", u.DeviceID)
			return nil
		}
		keys = canon
	}
	tracked, err := s.db.SharesRoomWithServer(ctx, u.UserID, s.serverName)
	if err != nil {
		return err
	}
	if !tracked {
		// Not applied; but a list cached from before is no longer kept up
		// to date (the update may also precede the join that makes the
		// room shared): it is fetched again when next needed.
		return s.db.WithTx(ctx, func(tx *storage.Tx) error {
			if l, err := tx.RemoteDeviceList(ctx, u.UserID); err != nil || l == nil || l.Stale {
				return err
			}
			return tx.MarkRemoteDeviceListStale(ctx, u.UserID)
		})
	}
	var (
		pos    int64
		resync bool
	)
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		pos, resync = 0, false
		l, err := tx.RemoteDeviceList(ctx, u.UserID)
		if err != nil {
			return err
		}
		switch {
		case l != nil && !l.Stale && u.StreamID <= l.StreamID:
			return nil // applied already, or older than the list fetched
		case l != nil && !l.Stale && len(u.PrevID) > 0 && !slices.ContainsFunc(u.PrevID, func(p int64) bool { return p != l.StreamID }):
			if keys == nil {
				err = tx.DeleteRemoteDevices(ctx, u.UserID, []string{u.DeviceID})
			} else {
				err = tx.SetRemoteDeviceKeys(ctx, u.UserID, u.DeviceID, keys, u.DisplayName)
			}
			if err != nil {
				return err
			}
			if err := tx.SetRemoteDeviceList(ctx, u.UserID, storage.RemoteDeviceList{StreamID: u.StreamID}); err != nil {
				return err
			}
		default:
			// A gap, a list never fetched, or one already stale: until it
			// is fetched again, queries ask the user's server.
			if err := tx.MarkRemoteDeviceListStale(ctx, u.UserID); err != nil {
				return err
			}
			resync = true
		}
		pos, err = tx.MarkDeviceListChanged(ctx, u.UserID)
		return err
	})
	if err != nil {
		return err
	}
	s.notifyDeviceListChange(ctx, u.UserID, pos)
	if resync {
		s.resyncs.request(u.UserID)
	}
	return nil
}

// signingKeyUpdate is the content of an m.signing_key_update EDU.
type signingKeyUpdate struct {
	UserID         string          `json:"user_id"`
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
}

// ReceiveSigningKeyUpdate applies an m.signing_key_update EDU from origin
// (a federation.EDUHandler): the master and self-signing keys of origin's
// user, who must share a room with one of ours, replace those cached.
// Whether they sign each other is for clients to check, as they do for keys
// fetched with a query.
func (s *Service) ReceiveSigningKeyUpdate(ctx context.Context, origin string, content json.RawMessage) error {
	var u signingKeyUpdate
	if err := json.Unmarshal(content, &u); err != nil {
		ignoredEDU(ctx, origin, eduSigningKeyUpdate, "malformed", "err", err)
		return nil
	}
	if _, server, ok := splitUserID(u.UserID); !ok || server != origin {
		ignoredEDU(ctx, origin, eduSigningKeyUpdate, "not the origin's user", "user", u.UserID)
		return nil
	}
	var keys []storage.CrossSigningKey
	for _, k := range []struct {
		raw       json.RawMessage
		typ, name string
	}{{u.MasterKey, storage.MasterKey, "master_key"}, {u.SelfSigningKey, storage.SelfSigningKey, "self_signing_key"}} {
		if len(k.raw) == 0 || string(k.raw) == "null" {
			continue
		}
		checked, err := checkCrossSigningKey(k.raw, u.UserID, k.typ, k.name)
		if err != nil {
			ignoredEDU(ctx, origin, eduSigningKeyUpdate, "a bad key", "user", u.UserID, "err", err)
			return nil
		}
		keys = append(keys, checked.CrossSigningKey)
	}
	if len(keys) == 0 {
		return nil
	}
	if tracked, err := s.db.SharesRoomWithServer(ctx, u.UserID, s.serverName); err != nil || !tracked {
		return err
	}
	var pos int64
	err := s.db.WithTx(ctx, func(tx *storage.Tx) error {
		for _, k := range keys {
			if err := tx.SetCrossSigningKey(ctx, u.UserID, k); err != nil {
				return err
			}
		}
		var err error
		pos, err = tx.MarkDeviceListChanged(ctx, u.UserID)
		return err
	})
	if err != nil {
		return err
	}
	s.notifyDeviceListChange(ctx, u.UserID, pos)
	return nil
}
