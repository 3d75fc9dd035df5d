package clientapi

// Send-to-device messaging (client-server-api "Send-to-Device messaging"):
// PUT /sendToDevice/{eventType}/{txnId}. Delivery is /sync's (syncapi);
// queuing, transaction IDs and remote users are clientapi/e2ee's.

import (
	"encoding/json"
	"net/http"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
)

func (a *API) registerToDevice(route func(method, path string, h func(http.ResponseWriter, *http.Request, *auth.Device))) {
	route(http.MethodPut, "/sendToDevice/{eventType}/{txnId}", a.putSendToDevice)
}

type sendToDeviceRequest struct {
	Messages map[string]map[string]json.RawMessage `json:"messages"`
}

// putSendToDevice implements PUT /sendToDevice/{eventType}/{txnId}.
func (a *API) putSendToDevice(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req sendToDeviceRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.Messages == nil {
		writeErr(w, r, httputil.MissingParam(`"messages" is required`))
		return
	}
	err := a.e2ee.SendToDevice(r.Context(), d.UserID, d.DeviceID,
		httputil.PathVar(r, "eventType"), httputil.PathVar(r, "txnId"), req.Messages)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}
