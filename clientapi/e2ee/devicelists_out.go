package e2ee

// Local users' device list changes, sent to the servers that share a room
// with them (server-server-api "Device Management"): m.device_list_update
// for a device added, changed (new keys, a new signature) or deleted, and
// m.signing_key_update for new master or self-signing keys.
//
// The transaction that makes a change also records it
// (storage.Tx.QueueDeviceListUpdates, QueueSigningKeyUpdate), with its
// stream_id and prev_id. Here the records become EDUs, built from the keys
// as they are now, and are deleted in the transaction that puts the EDUs in
// the federation sender's durable queue: each change is sent once, even
// across a crash. Every process with this service forwards, woken by its
// own changes and every half minute; a record taken by two at once is
// forwarded by the one whose deletion removes it.

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/myelin-chat/myelin/storage"
)

const (
	eduDeviceListUpdate = "m.device_list_update"
	eduSigningKeyUpdate = "m.signing_key_update"
	// deviceListsBatch bounds the records forwarded in one transaction.
	deviceListsBatch = 100
	// deviceListsSweep is how often the records are looked at without a
	// wake-up (those of a process that died before forwarding them).
	deviceListsSweep = 30 * time.Second
)

// errTakenMeanwhile: another process forwarded some of the records first.
var errTakenMeanwhile = errors.New("device list updates forwarded by another process")

// runDeviceListsOut forwards the records whenever woken, until Close.
func (s *Service) runDeviceListsOut() {
	defer s.wg.Done()
	tick := time.NewTicker(deviceListsSweep)
	defer tick.Stop()
	signal(s.devicesOut) // what was left from before
	for {
		select {
		case <-s.stop:
			return
		case <-s.devicesOut:
		case <-tick.C:
		}
		for {
			n, err := s.forwardDeviceLists()
			if errors.Is(err, errTakenMeanwhile) {
				continue
			}
			if err != nil {
				s.logger.Error("cannot send device list updates to other servers", "err", err)
				break // the next tick tries again
			}
			if n < deviceListsBatch {
				break
			}
		}
	}
}

// queuedEDU is an EDU for some destinations.
type queuedEDU struct {
	dests   []string
	typ     string
	content []byte
}

// forwardDeviceLists turns one batch of records into queued EDUs and
// returns how many records it read.
func (s *Service) forwardDeviceLists() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	updates, err := s.db.DeviceListUpdates(ctx, deviceListsBatch)
	if err != nil || len(updates) == 0 {
		return 0, err
	}
	dests := map[string][]string{} // user → servers sharing a room
	var out []queuedEDU
	nids := make([]int64, len(updates))
	for i, u := range updates {
		nids[i] = u.NID
		d, ok := dests[u.UserID]
		if !ok {
			if d, err = s.userDestinations(ctx, u.UserID); err != nil {
				return 0, err
			}
			dests[u.UserID] = d
		}
		if len(d) == 0 {
			continue // no other server shares a room: nobody to tell
		}
		edu, err := s.deviceListEDU(ctx, u)
		if err != nil {
			return 0, err
		}
		out = append(out, queuedEDU{dests: d, typ: edu.typ, content: edu.content})
	}
	var woken []string
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		n, err := tx.DeleteDeviceListUpdates(ctx, nids)
		if err != nil {
			return err
		}
		if n != int64(len(nids)) {
			return errTakenMeanwhile
		}
		for _, q := range out {
			if err := tx.EnqueueEDU(ctx, q.dests, q.typ, "", q.content); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, q := range out {
		for _, d := range q.dests {
			if !seen[d] {
				seen[d] = true
				woken = append(woken, d)
			}
		}
	}
	s.sendQueuedEDUs(ctx, woken)
	return len(updates), nil
}

// userDestinations returns the other servers with a user joined to a room
// userID is joined to.
func (s *Service) userDestinations(ctx context.Context, userID string) ([]string, error) {
	users, err := s.db.UsersSharingRoomWith(ctx, userID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{s.serverName: true}
	var out []string
	for _, u := range users {
		if _, server, ok := splitUserID(u); ok && !seen[server] {
			seen[server] = true
			out = append(out, server)
		}
	}
	return out, nil
}

// deviceListEDU builds the EDU of one record from the keys as they are
// now: a later change has its own record, so sending the newest keys early
// loses nothing.
func (s *Service) deviceListEDU(ctx context.Context, u storage.DeviceListUpdate) (queuedEDU, error) {
	if u.DeviceID == "" {
		keys, err := s.queryLocal(ctx, "", map[string][]string{u.UserID: nil}, false)
		if err != nil {
			return queuedEDU{}, err
		}
		c := map[string]any{"user_id": u.UserID}
		if k, ok := keys.MasterKeys[u.UserID]; ok {
			c["master_key"] = k
		}
		if k, ok := keys.SelfSigningKeys[u.UserID]; ok {
			c["self_signing_key"] = k
		}
		content, err := json.Marshal(c)
		return queuedEDU{typ: eduSigningKeyUpdate, content: content}, err
	}
	keys, err := s.queryLocal(ctx, "", map[string][]string{u.UserID: {u.DeviceID}}, false)
	if err != nil {
		return queuedEDU{}, err
	}
	c := map[string]any{
		"user_id":   u.UserID,
		"device_id": u.DeviceID,
		"stream_id": u.StreamID,
		"prev_id":   []int64{},
	}
	if u.PrevID > 0 {
		c["prev_id"] = []int64{u.PrevID}
	}
	// Device names stay home, as with GET /user/devices (devices.go).
	if k, ok := keys.DeviceKeys[u.UserID][u.DeviceID]; ok {
		c["keys"] = k
	} else {
		c["deleted"] = true
	}
	content, err := json.Marshal(c)
	return queuedEDU{typ: eduDeviceListUpdate, content: content}, err
}
