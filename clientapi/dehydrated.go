package clientapi

// Dehydrated devices (MSC3814, unstable prefix
// /_matrix/client/unstable/org.matrix.msc3814.v1): PUT, GET and DELETE
// /dehydrated_device and POST /dehydrated_device/{deviceId}/events.

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/internal/httputil"
)

const msc3814Prefix = "/_matrix/client/unstable/org.matrix.msc3814.v1"

func (a *API) registerDehydratedDevice(r *mux.Router) {
	r.HandleFunc(msc3814Prefix+"/dehydrated_device", a.auth.Required(a.putDehydratedDevice)).Methods(http.MethodPut)
	r.HandleFunc(msc3814Prefix+"/dehydrated_device", a.auth.Required(a.getDehydratedDevice)).Methods(http.MethodGet)
	r.HandleFunc(msc3814Prefix+"/dehydrated_device", a.auth.Required(a.deleteDehydratedDevice)).Methods(http.MethodDelete)
	r.HandleFunc(msc3814Prefix+"/dehydrated_device/{deviceId}/events", a.auth.Required(a.postDehydratedEvents)).Methods(http.MethodPost)
}

// putDehydratedDevice implements PUT /dehydrated_device.
func (a *API) putDehydratedDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req e2ee.DehydratedDeviceRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	id, err := a.e2ee.PutDehydratedDevice(r.Context(), d.UserID, &req)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]string{"device_id": id})
}

// getDehydratedDevice implements GET /dehydrated_device.
func (a *API) getDehydratedDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	dd, err := a.e2ee.DehydratedDevice(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]any{"device_id": dd.DeviceID, "device_data": json.RawMessage(dd.Data)})
}

// deleteDehydratedDevice implements DELETE /dehydrated_device.
func (a *API) deleteDehydratedDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	id, err := a.e2ee.DeleteDehydratedDevice(r.Context(), d.UserID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]string{"device_id": id})
}

type toDeviceEventJSON struct {
	Sender  string          `json:"sender"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// postDehydratedEvents implements POST /dehydrated_device/{deviceId}/events.
func (a *API) postDehydratedEvents(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req struct {
		NextBatch *string `json:"next_batch"`
	}
	// The first call may come without a body.
	if err := readOptionalJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	from := ""
	if req.NextBatch != nil {
		from = *req.NextBatch
	}
	msgs, next, err := a.e2ee.DehydratedEvents(r.Context(), d.UserID, httputil.PathVar(r, "deviceId"), from)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	events := make([]toDeviceEventJSON, len(msgs))
	for i, m := range msgs {
		events[i] = toDeviceEventJSON{Sender: m.Sender, Type: m.Type, Content: m.Content}
	}
	writeOK(w, r, map[string]any{"events": events, "next_batch": next})
}
