package clientapi

// Login and logout (client-server-api "Login", "Refreshing access tokens",
// "Logout"): GET and POST /login with m.login.password and every
// identifier type, POST /refresh, POST /logout and /logout/all.

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerLogin(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/login", a.getLogin).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/login", a.postLogin).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/refresh", a.postRefresh).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/logout", a.auth.Required(a.postLogout)).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/logout/all", a.auth.Required(a.postLogoutAll)).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/account/whoami", a.auth.Required(a.getWhoami)).Methods(http.MethodGet)
}

// getLogin implements GET /_matrix/client/v3/login: the login types.
func (a *API) getLogin(w http.ResponseWriter, r *http.Request) {
	writeOK(w, r, map[string]any{"flows": []map[string]string{{"type": "m.login.password"}}})
}

type loginRequest struct {
	Type                     string  `json:"type"`
	DeviceID                 *string `json:"device_id"`
	InitialDeviceDisplayName *string `json:"initial_device_display_name"`
	RefreshToken             bool    `json:"refresh_token"`
}

// postLogin implements POST /_matrix/client/v3/login.
func (a *API) postLogin(w http.ResponseWriter, r *http.Request) {
	if err := a.limits.Login.Check(a.auth.ClientIP(r)); err != nil {
		writeErr(w, r, err)
		return
	}
	body, err := httputil.ReadJSONObject(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var req loginRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeErr(w, r, httputil.BadJSON("type, device_id and initial_device_display_name must be strings, refresh_token a boolean"))
		return
	}
	switch req.Type {
	case "m.login.password":
	case "":
		writeErr(w, r, httputil.MissingParam(`"type" is missing`))
		return
	default:
		// The spec's example answer to a login type the server lacks.
		writeErr(w, r, httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "unknown login type "+req.Type))
		return
	}
	localpart, err := a.auth.CheckLoginPassword(r.Context(), body, a.limits.FailedLogin)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var s *auth.Session
	err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		var err error
		s, err = a.auth.Login(r.Context(), tx, auth.LoginRequest{
			Localpart:   localpart,
			DeviceID:    deref(req.DeviceID),
			DisplayName: req.InitialDeviceDisplayName,
			Refresh:     req.RefreshToken,
		})
		return err
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, s)
}

type refreshRequest struct {
	RefreshToken *string `json:"refresh_token"`
}

// postRefresh implements POST /_matrix/client/v3/refresh.
func (a *API) postRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.RefreshToken == nil || *req.RefreshToken == "" {
		writeErr(w, r, httputil.MissingParam(`"refresh_token" is missing`))
		return
	}
	s, err := a.auth.Refresh(r.Context(), *req.RefreshToken)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]any{
		"access_token":  s.AccessToken,
		"refresh_token": s.RefreshToken,
		"expires_in_ms": s.ExpiresInMS,
	})
}

// postLogout implements POST /_matrix/client/v3/logout: the device goes
// with its token.
func (a *API) postLogout(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var keysPos int64
	err := a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		deleted, err := tx.DeleteDevices(r.Context(), d.Localpart(), []string{d.DeviceID})
		if err != nil {
			return err
		}
		keysPos, err = tx.ForgetDevices(r.Context(), d.UserID, deleted)
		return err
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.deviceKeysGone(r.Context(), d.UserID, keysPos)
	writeOK(w, r, emptyObject)
}

// postLogoutAll implements POST /_matrix/client/v3/logout/all: every device
// of the user goes.
func (a *API) postLogoutAll(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var keysPos int64
	err := a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		deleted, err := tx.DeleteAllDevices(r.Context(), d.Localpart())
		if err != nil {
			return err
		}
		keysPos, err = tx.ForgetDevices(r.Context(), d.UserID, deleted)
		return err
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.deviceKeysGone(r.Context(), d.UserID, keysPos)
	writeOK(w, r, emptyObject)
}

// getWhoami implements GET /_matrix/client/v3/account/whoami.
func (a *API) getWhoami(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	writeOK(w, r, map[string]any{"user_id": d.UserID, "device_id": d.DeviceID, "is_guest": false})
}

// nowMS is the current time in milliseconds since the epoch.
func nowMS() int64 { return time.Now().UnixMilli() }
