package clientapi

// End-to-end encryption keys (client-server-api "Key management API" and
// "Cross-signing"): /keys/upload, /keys/query, /keys/claim, /keys/changes,
// /keys/device_signing/upload and /keys/signatures/upload. The checks and
// the storage are clientapi/e2ee's; these handlers read the request and
// write the answer.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
	"github.com/myelin-chat/myelin/syncapi/synctoken"
)

// registerE2EE adds the end-to-end encryption modules' routes: keys here,
// send-to-device (todevice.go), key backup (keybackup.go) and dehydrated
// devices (dehydrated.go).
func (a *API) registerE2EE(r *mux.Router) {
	if a.e2ee == nil {
		return
	}
	const v3 = "/_matrix/client/v3"
	route := func(method, path string, h func(http.ResponseWriter, *http.Request, *auth.Device)) {
		r.HandleFunc(v3+path, a.auth.Required(h)).Methods(method)
	}
	route(http.MethodPost, "/keys/upload", a.postKeysUpload)
	route(http.MethodPost, "/keys/query", a.postKeysQuery)
	route(http.MethodPost, "/keys/claim", a.postKeysClaim)
	route(http.MethodGet, "/keys/changes", a.getKeysChanges)
	route(http.MethodPost, "/keys/device_signing/upload", a.postCrossSigningUpload)
	route(http.MethodPost, "/keys/signatures/upload", a.postSignaturesUpload)
	a.registerToDevice(route)
	a.registerKeyBackup(route)
	a.registerDehydratedDevice(r)
}

// postKeysUpload implements POST /keys/upload.
func (a *API) postKeysUpload(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req e2ee.UploadRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	counts, err := a.e2ee.Upload(r.Context(), d.UserID, d.DeviceID, &req)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]any{"one_time_key_counts": counts})
}

type keysQueryRequest struct {
	DeviceKeys map[string][]string `json:"device_keys"`
	Timeout    *int64              `json:"timeout"`
}

// postKeysQuery implements POST /keys/query.
func (a *API) postKeysQuery(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req keysQueryRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.DeviceKeys == nil {
		writeErr(w, r, httputil.MissingParam(`"device_keys" is required`))
		return
	}
	res, err := a.e2ee.Query(r.Context(), d.UserID, req.DeviceKeys, e2ee.RemoteTimeout(req.Timeout))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, res)
}

type keysClaimRequest struct {
	OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	Timeout     *int64                       `json:"timeout"`
}

// postKeysClaim implements POST /keys/claim.
func (a *API) postKeysClaim(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req keysClaimRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.OneTimeKeys == nil {
		writeErr(w, r, httputil.MissingParam(`"one_time_keys" is required`))
		return
	}
	res, err := a.e2ee.Claim(r.Context(), req.OneTimeKeys, e2ee.RemoteTimeout(req.Timeout))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, res)
}

// getKeysChanges implements GET /keys/changes?from=&to=: both are sync
// tokens; a missing "to" means now.
func (a *API) getKeysChanges(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	q := r.URL.Query()
	if q.Get("from") == "" {
		writeErr(w, r, httputil.MissingParam(`"from" is required`))
		return
	}
	from, err := synctoken.Parse("from", q.Get("from"))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var to int64
	if s := q.Get("to"); s != "" {
		t, err := synctoken.Parse("to", s)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		to = t.Pos
	} else if to, err = a.db.StreamPos(r.Context()); err != nil {
		writeErr(w, r, err)
		return
	}
	changed, left, err := a.db.DeviceListChanges(r.Context(), d.UserID, from.Pos, to)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if changed == nil {
		changed = []string{}
	}
	if left == nil {
		left = []string{}
	}
	writeOK(w, r, map[string][]string{"changed": changed, "left": left})
}

type crossSigningRequest struct {
	e2ee.CrossSigningUpload
	Auth json.RawMessage `json:"auth"`
}

// postCrossSigningUpload implements POST /keys/device_signing/upload.
// Replacing keys needs user-interactive auth; the first upload, and a
// repeat of the stored keys, do not (the spec's exceptions).
func (a *API) postCrossSigningUpload(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req crossSigningRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	plan, err := a.e2ee.PrepareCrossSigning(r.Context(), d.UserID, &req.CrossSigningUpload)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var passed *auth.Passed
	if plan.NeedsAuth {
		// The session authorises these keys only, not another upload.
		op := passwordUIA("upload cross-signing keys "+keysDigest(req.CrossSigningUpload), d)
		if passed, err = a.auth.CheckUIA(r.Context(), op, req.Auth); err != nil {
			writeErr(w, r, err)
			return
		}
	}
	err = a.e2ee.StoreCrossSigning(r.Context(), plan, func(tx *storage.Tx) error {
		if passed == nil {
			return nil
		}
		return auth.FinishUIA(r.Context(), tx, passed)
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}

// keysDigest names an upload's keys in a UIA operation.
func keysDigest(u e2ee.CrossSigningUpload) string {
	h := sha256.New()
	for _, k := range []json.RawMessage{u.MasterKey, u.SelfSigningKey, u.UserSigningKey} {
		h.Write(k)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// postSignaturesUpload implements POST /keys/signatures/upload.
func (a *API) postSignaturesUpload(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req map[string]map[string]json.RawMessage
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	failures, err := a.e2ee.UploadSignatures(r.Context(), d.UserID, req)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]any{"failures": failures})
}

// deviceKeysGone tells e2ee that deleting devices changed userID's device
// list at pos (storage.ForgetDevices), so that the syncs of who shares
// a room with them hear of it.
func (a *API) deviceKeysGone(ctx context.Context, userID string, pos int64) {
	if a.e2ee != nil && pos > 0 {
		a.e2ee.DeviceListChanged(ctx, userID, pos)
	}
}
