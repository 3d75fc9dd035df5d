package clientapi

// Shared-secret registration, Synapse's admin API that tools and test
// suites (synapse's register_new_matrix_user, Complement, sytest) use to
// create accounts: GET /_synapse/admin/v1/register returns a nonce, and
// POST /_synapse/admin/v1/register creates the account if its mac is the
// HMAC-SHA1, keyed with registration_shared_secret, of
// nonce NUL username NUL password NUL "admin"|"notadmin" [NUL user_type].

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// nonceLifetime is how long a shared-secret registration nonce is valid,
// as in Synapse.
const nonceLifetime = time.Minute

// nonceOperation marks the UIA session rows that hold these nonces: a
// nonce is a short-lived, single-use, server-issued ID, which is what a
// UIA session is, and keeping it in the database lets the GET and the POST
// reach different processes.
const nonceOperation = "shared-secret registration nonce"

func (a *API) registerSharedSecret(r *mux.Router) {
	r.HandleFunc("/_synapse/admin/v1/register", a.getRegisterNonce).Methods(http.MethodGet)
	r.HandleFunc("/_synapse/admin/v1/register", a.postSharedSecretRegister).Methods(http.MethodPost)
}

// sharedSecretDisabled is Synapse's answer when no secret is configured.
func sharedSecretDisabled() error {
	return httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "shared secret registration is not enabled")
}

func (a *API) getRegisterNonce(w http.ResponseWriter, r *http.Request) {
	if a.cfg.RegistrationSharedSecret == "" {
		writeErr(w, r, sharedSecretDisabled())
		return
	}
	nonce := auth.NewSessionID()
	err := a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		return tx.CreateUIASession(r.Context(), nonce, nonceOperation)
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]string{"nonce": nonce})
}

type sharedSecretRequest struct {
	Nonce       *string `json:"nonce"`
	Username    *string `json:"username"`
	DisplayName *string `json:"displayname"`
	Password    *string `json:"password"`
	Admin       bool    `json:"admin"`
	UserType    *string `json:"user_type"`
	MAC         *string `json:"mac"`
}

func (a *API) postSharedSecretRegister(w http.ResponseWriter, r *http.Request) {
	if a.cfg.RegistrationSharedSecret == "" {
		writeErr(w, r, sharedSecretDisabled())
		return
	}
	var req sharedSecretRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	resp, err := a.sharedSecretRegister(r.Context(), &req)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, resp)
}

func (a *API) sharedSecretRegister(ctx context.Context, req *sharedSecretRequest) (*auth.Session, error) {
	switch {
	case req.Nonce == nil || *req.Nonce == "":
		return nil, httputil.MissingParam(`"nonce" is missing`)
	case req.Username == nil || *req.Username == "":
		return nil, httputil.MissingParam(`"username" is missing`)
	case req.Password == nil:
		return nil, httputil.MissingParam(`"password" is missing`)
	case req.MAC == nil || *req.MAC == "":
		return nil, httputil.MissingParam(`"mac" is missing`)
	}
	if err := auth.CheckPasswordParam(*req.Password); err != nil {
		return nil, err
	}
	userType := ""
	if req.UserType != nil {
		userType = *req.UserType
		// Synapse's user types; Myelin stores none, but the mac covers it.
		if userType != "support" && userType != "bot" {
			return nil, httputil.InvalidParam("user_type must be support or bot")
		}
	}
	want := sharedSecretMAC(a.cfg.RegistrationSharedSecret, *req.Nonce, *req.Username, *req.Password, req.Admin, userType)
	got, err := hex.DecodeString(strings.ToLower(*req.MAC))
	macOK := err == nil && hmac.Equal(got, want)

	localpart := strings.ToLower(*req.Username)
	if err := validLocalpart(localpart, a.cfg.ServerName); err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(*req.Password, a.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	// The nonce is spent by any attempt, right or wrong, so that a mac
	// cannot be guessed against one nonce: in a transaction of its own,
	// before anything else can fail.
	err = a.db.WithTx(ctx, func(tx *storage.Tx) error {
		n, err := tx.GetUIASession(ctx, *req.Nonce)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && n.Operation != nonceOperation) {
			return httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "unrecognised nonce")
		}
		if err != nil {
			return err
		}
		if time.Since(time.UnixMilli(n.CreatedTS)) > nonceLifetime {
			// Unusable from now on; the row goes with the expired UIA
			// sessions.
			return httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "the nonce has expired")
		}
		return tx.DeleteUIASession(ctx, n.ID, true)
	})
	if err != nil {
		return nil, err
	}
	if !macOK {
		return nil, httputil.Forbidden("HMAC incorrect")
	}
	var s *auth.Session
	err = a.db.WithTx(ctx, func(tx *storage.Tx) error {
		if err := tx.CreateAccount(ctx, localpart, hash, req.Admin); err != nil {
			if errors.Is(err, storage.ErrAccountExists) {
				return userInUse()
			}
			return err
		}
		name := localpart
		if req.DisplayName != nil && *req.DisplayName != "" {
			name = *req.DisplayName
		}
		if err := setDisplayNameField(ctx, tx, localpart, name); err != nil {
			return err
		}
		var err error
		s, err = a.auth.Login(ctx, tx, auth.LoginRequest{Localpart: localpart})
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// sharedSecretMAC is Synapse's mac of a shared-secret registration.
func sharedSecretMAC(secret, nonce, username, password string, admin bool, userType string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	m.Write([]byte(nonce + "\x00" + username + "\x00" + password + "\x00" + role))
	if userType != "" {
		m.Write([]byte("\x00" + userType))
	}
	return m.Sum(nil)
}

// setDisplayNameField stores a display name in the profile.
func setDisplayNameField(ctx context.Context, tx *storage.Tx, localpart, name string) error {
	v, err := json.Marshal(name)
	if err != nil {
		return err
	}
	return tx.SetProfileField(ctx, localpart, "displayname", v)
}
