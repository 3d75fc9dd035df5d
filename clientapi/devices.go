package clientapi

// Device management (client-server-api "Device management"): list, get and
// rename a user's devices, and delete them behind user-interactive auth.
// Deleting a device ends its session (its tokens go with it) and deletes
// its end-to-end encryption keys.

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerDevices(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/devices", a.auth.Required(a.listDevices)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/devices/{deviceId}", a.auth.Required(a.getDevice)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/devices/{deviceId}", a.auth.Required(a.putDevice)).Methods(http.MethodPut)
	r.HandleFunc("/_matrix/client/v3/devices/{deviceId}", a.auth.Required(a.deleteDevice)).Methods(http.MethodDelete)
	r.HandleFunc("/_matrix/client/v3/delete_devices", a.auth.Required(a.postDeleteDevices)).Methods(http.MethodPost)
}

type deviceJSON struct {
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
	LastSeenIP  *string `json:"last_seen_ip,omitempty"`
	LastSeenTS  *int64  `json:"last_seen_ts,omitempty"`
}

func toDeviceJSON(d *storage.Device) deviceJSON {
	j := deviceJSON{DeviceID: d.DeviceID, DisplayName: d.DisplayName}
	if d.LastSeenTS != 0 {
		j.LastSeenTS = &d.LastSeenTS
		j.LastSeenIP = &d.LastSeenIP
	}
	return j
}

// listDevices implements GET /_matrix/client/v3/devices.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	ds, err := a.db.ListDevices(r.Context(), d.Localpart())
	if err != nil {
		writeErr(w, r, err)
		return
	}
	out := make([]deviceJSON, len(ds))
	for i := range ds {
		out[i] = toDeviceJSON(&ds[i])
	}
	writeOK(w, r, map[string]any{"devices": out})
}

func deviceNotFound() error { return httputil.NotFound("no such device") }

// getDevice implements GET /_matrix/client/v3/devices/{deviceId}.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	dev, err := a.db.GetDevice(r.Context(), d.Localpart(), httputil.PathVar(r, "deviceId"))
	if errors.Is(err, storage.ErrNotFound) {
		err = deviceNotFound()
	}
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, toDeviceJSON(dev))
}

// maxDeviceNameLength bounds device display names, as Synapse (100).
const maxDeviceNameLength = 100

type putDeviceRequest struct {
	DisplayName *string `json:"display_name"`
}

// putDevice implements PUT /_matrix/client/v3/devices/{deviceId}: rename.
// Without display_name nothing changes.
func (a *API) putDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req putDeviceRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.DisplayName != nil && len(*req.DisplayName) > maxDeviceNameLength {
		writeErr(w, r, httputil.InvalidParam("display_name is longer than 100 bytes"))
		return
	}
	id := httputil.PathVar(r, "deviceId")
	err := a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		if req.DisplayName == nil {
			// Still a 404 for an unknown device.
			ds, err := tx.ListDevices(r.Context(), d.Localpart())
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(ds, func(x storage.Device) bool { return x.DeviceID == id }) {
				return storage.ErrNotFound
			}
			return nil
		}
		return tx.SetDeviceDisplayName(r.Context(), d.Localpart(), id, req.DisplayName)
	})
	if errors.Is(err, storage.ErrNotFound) {
		err = deviceNotFound()
	}
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}

type deleteDevicesRequest struct {
	Auth    json.RawMessage `json:"auth"`
	Devices *[]string       `json:"devices"`
}

// deleteDevice implements DELETE /_matrix/client/v3/devices/{deviceId}.
func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	id := httputil.PathVar(r, "deviceId")
	var req deleteDevicesRequest
	// The first request of the UIA often has no body at all.
	if err := readOptionalJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if _, err := a.db.GetDevice(r.Context(), d.Localpart(), id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = deviceNotFound()
		}
		writeErr(w, r, err)
		return
	}
	a.deleteDevices(w, r, d, []string{id}, req.Auth)
}

// postDeleteDevices implements POST /_matrix/client/v3/delete_devices.
// Unknown device IDs are ignored.
func (a *API) postDeleteDevices(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req deleteDevicesRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.Devices == nil {
		writeErr(w, r, httputil.MissingParam(`"devices" is missing`))
		return
	}
	a.deleteDevices(w, r, d, *req.Devices, req.Auth)
}

// maxDeleteDevices bounds one /delete_devices request (Synapse: 1000).
const maxDeleteDevices = 1000

func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request, d *auth.Device, ids []string, authRaw json.RawMessage) {
	if len(ids) > maxDeleteDevices {
		writeErr(w, r, httputil.InvalidParam("at most 1000 devices can be deleted at once"))
		return
	}
	// The session is bound to the exact set of devices, so that a session
	// authorised for one device cannot delete others.
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	op := passwordUIA("delete devices "+strings.Join(slices.Compact(sorted), ","), d)
	passed, err := a.auth.CheckUIA(r.Context(), op, authRaw)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var keysPos int64
	err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		deleted, err := tx.DeleteDevices(r.Context(), d.Localpart(), ids)
		if err != nil {
			return err
		}
		if keysPos, err = tx.ForgetDevices(r.Context(), d.UserID, deleted); err != nil {
			return err
		}
		return auth.FinishUIA(r.Context(), tx, passed)
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.deviceKeysGone(r.Context(), d.UserID, keysPos)
	writeOK(w, r, emptyObject)
}
