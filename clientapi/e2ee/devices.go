package e2ee

// A local user's device list as other servers fetch it (server-server-api
// "GET /_matrix/federation/v1/user/devices/{userId}").

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// UserDevices is a user's device list for another server.
type UserDevices struct {
	UserID string `json:"user_id"`
	// StreamID is the position of the list's last change; the
	// m.device_list_update EDUs that will follow it carry later ones.
	StreamID       int64           `json:"stream_id"`
	Devices        []DeviceInfo    `json:"devices"`
	MasterKey      json.RawMessage `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage `json:"self_signing_key,omitempty"`
}

// DeviceInfo is one device of UserDevices. Device names are not given to
// other servers (Synapse's default, allow_device_name_lookup_over_federation
// off): they often say more about a person than their keys do.
type DeviceInfo struct {
	DeviceID string          `json:"device_id"`
	Keys     json.RawMessage `json:"keys,omitempty"`
}

// UserDevices returns the device list of the local user userID; another
// server's user is 400 M_INVALID_PARAM, an unknown one 404.
func (s *Service) UserDevices(ctx context.Context, userID string) (*UserDevices, error) {
	lp, ok := s.isLocal(userID)
	if !ok {
		return nil, httputil.InvalidParam(userID + " is not a user of this server")
	}
	if _, err := s.db.GetAccount(ctx, lp); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, httputil.NotFound("no such user")
		}
		return nil, err
	}
	streamID, err := s.db.DeviceListStreamID(ctx, userID)
	if err != nil {
		return nil, err
	}
	devices, err := s.db.ListDevices(ctx, lp)
	if err != nil {
		return nil, err
	}
	keys, err := s.queryLocal(ctx, "", map[string][]string{userID: nil}, false)
	if err != nil {
		return nil, err
	}
	out := &UserDevices{UserID: userID, StreamID: streamID, Devices: []DeviceInfo{},
		MasterKey: keys.MasterKeys[userID], SelfSigningKey: keys.SelfSigningKeys[userID]}
	for _, d := range devices {
		out.Devices = append(out.Devices, DeviceInfo{DeviceID: d.DeviceID, Keys: keys.DeviceKeys[userID][d.DeviceID]})
	}
	return out, nil
}
