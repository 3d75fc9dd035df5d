package clientapi

// Password change and account deactivation (client-server-api "Account
// registration and management"), both behind user-interactive auth with
// the m.login.password stage.

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/roomserver"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerAccountManagement(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/account/password", a.auth.Required(a.postPassword)).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/account/deactivate", a.auth.Required(a.postDeactivate)).Methods(http.MethodPost)
}

// passwordUIA is the UIA operation of an account change by d: the user
// proves it is them with their password.
func passwordUIA(what string, d *auth.Device) *auth.Operation {
	return &auth.Operation{
		Name:      what + " " + d.UserID,
		Flows:     [][]string{{auth.StagePassword}},
		Localpart: d.Localpart(),
	}
}

type passwordRequest struct {
	Auth          json.RawMessage `json:"auth"`
	NewPassword   *string         `json:"new_password"`
	LogoutDevices *bool           `json:"logout_devices"`
}

// postPassword implements POST /_matrix/client/v3/account/password.
func (a *API) postPassword(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req passwordRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if req.NewPassword == nil {
		writeErr(w, r, httputil.MissingParam(`"new_password" is missing`))
		return
	}
	if err := auth.CheckPasswordParam(*req.NewPassword); err != nil {
		writeErr(w, r, err)
		return
	}
	passed, err := a.auth.CheckUIA(r.Context(), passwordUIA("change the password of", d), req.Auth)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	hash, err := auth.HashPassword(*req.NewPassword, a.cfg.BcryptCost)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices // the spec's default is true
	var keysPos int64
	err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		if err := tx.SetPasswordHash(r.Context(), d.Localpart(), hash); err != nil {
			return err
		}
		if err := auth.FinishUIA(r.Context(), tx, passed); err != nil {
			return err
		}
		if logout {
			// The other sessions end; the one that changed the password
			// stays logged in.
			deleted, err := tx.DeleteAllDevices(r.Context(), d.Localpart(), d.DeviceID)
			if err != nil {
				return err
			}
			keysPos, err = tx.ForgetDevices(r.Context(), d.UserID, deleted)
			return err
		}
		return nil
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.deviceKeysGone(r.Context(), d.UserID, keysPos)
	writeOK(w, r, emptyObject)
}

type deactivateRequest struct {
	Auth     json.RawMessage `json:"auth"`
	IDServer *string         `json:"id_server"`
	Erase    bool            `json:"erase"`
}

// postDeactivate implements POST /_matrix/client/v3/account/deactivate.
func (a *API) postDeactivate(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req deactivateRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	passed, err := a.auth.CheckUIA(r.Context(), passwordUIA("deactivate", d), req.Auth)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if err := a.deactivate(r.Context(), d.Localpart(), req.Erase, passed); err != nil {
		writeErr(w, r, err)
		return
	}
	// No identity server binding is ever made here, so none is removed.
	writeOK(w, r, map[string]string{"id_server_unbind_result": "no-support"})
}

// deactivate deactivates localpart: sessions end at once, the account can
// never log in again, (erase) the profile goes, and the user leaves every
// room, rejects its invites and withdraws its knocks, as Synapse does.
func (a *API) deactivate(ctx context.Context, localpart string, erase bool, passed *auth.Passed) error {
	userID := a.auth.UserID(localpart)
	var keysPos int64
	err := a.db.WithTx(ctx, func(tx *storage.Tx) error {
		devices, err := tx.ListDevices(ctx, localpart)
		if err != nil {
			return err
		}
		if err := tx.DeactivateAccount(ctx, localpart, erase); err != nil {
			return err
		}
		ids := make([]string, len(devices))
		for i, dev := range devices {
			ids[i] = dev.DeviceID
		}
		if keysPos, err = tx.ForgetDevices(ctx, userID, ids); err != nil {
			return err
		}
		return auth.FinishUIA(ctx, tx, passed)
	})
	if err != nil {
		return err
	}
	a.deviceKeysGone(ctx, userID, keysPos)
	if a.rs == nil {
		return nil
	}
	rooms, err := a.rs.RoomsForUser(ctx, userID, "join", "invite", "knock")
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		_, err := a.rs.Send(ctx, roomID, roomserver.EventRequest{
			Type: "m.room.member", StateKey: &userID, Sender: userID,
			Content: json.RawMessage(`{"membership":"leave"}`),
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The account is deactivated either way; a room that refuses
			// the leave keeps a stale membership, as in Synapse.
			httputil.Logger(ctx).WarnContext(ctx, "deactivated user could not leave a room", "room_id", roomID, "err", err)
		}
	}
	return nil
}
