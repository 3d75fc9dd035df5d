package e2ee

// Fetching a remote user's whole device list again (GET
// /_matrix/federation/v1/user/devices/{userId}) when the cached one is
// stale: an update was missed, or the list was never fetched. One fetch
// per user at a time (a request during a fetch makes it run once more
// after, since it may have missed what the request was about), a few
// users at once, and stale lists that could not be fetched are tried
// again every minute while their user shares a room with ours; the list
// of a user who no longer does is forgotten instead.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/myelin-chat/myelin/storage"
)

const (
	// maxConcurrentResyncs bounds the fetches in flight.
	maxConcurrentResyncs = 4
	resyncTimeout        = 30 * time.Second
	// resyncRetry is how often stale lists are tried again, and how long a
	// failed fetch is not repeated on request.
	resyncRetry = time.Minute
	// resyncBatch bounds the stale lists tried again at once.
	resyncBatch = 20
	// maxPendingResyncs bounds the users waiting for a fetch (a query of
	// every member of a large room names thousands).
	maxPendingResyncs = 1000
	// maxRemoteDevices bounds the devices cached for one user.
	maxRemoteDevices = 10000
)

type resyncer struct {
	s   *Service
	sem chan struct{}

	mu      sync.Mutex
	closed  bool
	running map[string]bool      // user → requested again while running
	failed  map[string]time.Time // user → when a fetch last failed
}

func newResyncer(s *Service) *resyncer {
	return &resyncer{s: s, sem: make(chan struct{}, maxConcurrentResyncs),
		running: map[string]bool{}, failed: map[string]time.Time{}}
}

// request fetches userID's device list in the background, unless a fetch
// failed within resyncRetry (the retry loop takes it then).
func (r *resyncer) request(userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if _, ok := r.running[userID]; ok {
		r.running[userID] = true
		return
	}
	if len(r.running) >= maxPendingResyncs {
		return // a later query or update asks again
	}
	if t, ok := r.failed[userID]; ok && time.Since(t) < resyncRetry {
		return
	}
	r.running[userID] = false
	r.s.wg.Add(1)
	go r.run(userID)
}

func (r *resyncer) run(userID string) {
	defer r.s.wg.Done()
	for {
		select {
		case r.sem <- struct{}{}:
		case <-r.s.stop:
			r.finish(userID, nil)
			return
		}
		err := r.s.resync(userID)
		<-r.sem
		if err != nil {
			r.s.logger.Info("cannot fetch a remote user's device list", "user", userID, "err", err)
		}
		if !r.finish(userID, err) {
			return
		}
	}
}

// finish records the end of a fetch and reports whether to fetch again.
func (r *resyncer) finish(userID string, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	again := r.running[userID]
	if err != nil {
		r.failed[userID] = time.Now()
	} else {
		delete(r.failed, userID)
	}
	if again && err == nil && !r.closed {
		r.running[userID] = false
		return true
	}
	delete(r.running, userID)
	return false
}

// close stops new fetches; Service.Close waits for those running.
func (r *resyncer) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
}

// runRetries tries the stale lists again every resyncRetry until Close.
func (r *resyncer) runRetries() {
	defer r.s.wg.Done()
	tick := time.NewTicker(resyncRetry)
	defer tick.Stop()
	for {
		select {
		case <-r.s.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(r.s.bgCtx, resyncTimeout)
		users, err := r.s.db.StaleRemoteDeviceLists(ctx, resyncBatch)
		cancel()
		if err != nil {
			r.s.logger.Warn("cannot list stale device lists", "err", err)
			continue
		}
		r.mu.Lock()
		for _, u := range users {
			delete(r.failed, u) // its turn has come
		}
		r.mu.Unlock()
		for _, u := range users {
			r.request(u)
		}
	}
}

// userDevicesResponse is the answer of GET /user/devices.
type userDevicesResponse struct {
	UserID   string `json:"user_id"`
	StreamID int64  `json:"stream_id"`
	Devices  []struct {
		DeviceID    string          `json:"device_id"`
		Keys        json.RawMessage `json:"keys"`
		DisplayName *string         `json:"device_display_name"`
	} `json:"devices"`
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
}

// resync fetches userID's device list from their server and replaces the
// cached one with it, if the user still shares a room with ours.
func (s *Service) resync(userID string) error {
	ctx, cancel := context.WithTimeout(s.bgCtx, resyncTimeout)
	defer cancel()
	tracked, err := s.db.SharesRoomWithServer(ctx, userID, s.serverName)
	if err != nil {
		return err
	}
	if !tracked {
		// No longer followed: nothing is kept, and a query asks the
		// user's server.
		return s.db.WithTx(ctx, func(tx *storage.Tx) error { return tx.ForgetRemoteDeviceList(ctx, userID) })
	}
	_, server, _ := splitUserID(userID)
	if s.fed == nil {
		return errors.New("federation is not available")
	}
	var resp userDevicesResponse
	err = s.fed.DoJSON(ctx, http.MethodGet, server, "/_matrix/federation/v1/user/devices/"+url.PathEscape(userID), nil, &resp)
	if err == nil && resp.UserID != userID {
		err = errors.New("the answer is about " + resp.UserID)
	}
	if err == nil && len(resp.Devices) > maxRemoteDevices {
		err = errors.New("too many devices")
	}
	if err != nil {
		// Touched, so that the retries take the other stale lists first.
		_ = s.db.WithTx(ctx, func(tx *storage.Tx) error { return tx.MarkRemoteDeviceListStale(ctx, userID) })
		return err
	}
	type device struct {
		id   string
		keys []byte
		name *string
	}
	var devices []device
	for _, d := range resp.Devices {
		if len(d.Keys) == 0 || string(d.Keys) == "null" || d.DeviceID == "" {
			continue // a device without keys: nothing to encrypt for
		}
		canon, err := canonicalObject(d.Keys, "keys", "unsigned")
		if err != nil || !keyOwnedBy(canon, userID, d.DeviceID) {
			continue
		}
		devices = append(devices, device{d.DeviceID, canon, d.DisplayName})
	}
	cross := map[string]*storage.CrossSigningKey{storage.MasterKey: nil, storage.SelfSigningKey: nil}
	for typ, raw := range map[string]json.RawMessage{storage.MasterKey: resp.MasterKey, storage.SelfSigningKey: resp.SelfSigningKey} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		if k, err := checkCrossSigningKey(raw, userID, typ, typ+"_key"); err == nil {
			cross[typ] = &k.CrossSigningKey
		}
	}
	var pos int64
	err = s.db.WithTx(ctx, func(tx *storage.Tx) error {
		if err := tx.DeleteRemoteDevices(ctx, userID, nil); err != nil {
			return err
		}
		for _, d := range devices {
			if err := tx.SetRemoteDeviceKeys(ctx, userID, d.id, d.keys, d.name); err != nil {
				return err
			}
		}
		for typ, k := range cross {
			var err error
			if k == nil {
				err = tx.DeleteCrossSigningKey(ctx, userID, typ)
			} else {
				err = tx.SetCrossSigningKey(ctx, userID, *k)
			}
			if err != nil {
				return err
			}
		}
		if err := tx.SetRemoteDeviceList(ctx, userID, storage.RemoteDeviceList{StreamID: resp.StreamID}); err != nil {
			return err
		}
		var err error
		pos, err = tx.MarkDeviceListChanged(ctx, userID)
		return err
	})
	if err != nil {
		return err
	}
	s.notifyDeviceListChange(ctx, userID, pos)
	return nil
}
