package clientapi

// Account registration (client-server-api "Account registration and
// management"): POST /register behind user-interactive auth
// (m.login.dummy when registration is open, m.login.registration_token
// always), GET /register/available and the registration token validity
// check.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerRegister(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/register", a.postRegister).Methods(http.MethodPost)
	r.HandleFunc("/_matrix/client/v3/register/available", a.getRegisterAvailable).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v1/register/m.login.registration_token/validity", a.getTokenValidity).Methods(http.MethodGet)
}

type registerRequest struct {
	Auth                     json.RawMessage `json:"auth"`
	Username                 *string         `json:"username"`
	Password                 *string         `json:"password"`
	DeviceID                 *string         `json:"device_id"`
	InitialDeviceDisplayName *string         `json:"initial_device_display_name"`
	InhibitLogin             bool            `json:"inhibit_login"`
	RefreshToken             bool            `json:"refresh_token"`
}

type registerResponse struct {
	UserID       string `json:"user_id"`
	AccessToken  string `json:"access_token,omitempty"`
	DeviceID     string `json:"device_id,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
	HomeServer   string `json:"home_server"`
}

// registerFlows are the UIA flows of /register: a dummy stage while
// registration is open, a registration token always (an administrator can
// hand one out even when registration is closed).
func (a *API) registerFlows() [][]string {
	if a.cfg.OpenRegistration {
		return [][]string{{auth.StageDummy}, {auth.StageRegistrationToken}}
	}
	return [][]string{{auth.StageRegistrationToken}}
}

// postRegister implements POST /_matrix/client/v3/register.
func (a *API) postRegister(w http.ResponseWriter, r *http.Request) {
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "user":
	case "guest":
		// As Synapse and Dendrite with guests disabled, and the spec's 403
		// ("a particular kind of account is not allowed").
		writeErr(w, r, httputil.Forbidden("guest accounts are not supported on this server"))
		return
	default:
		writeErr(w, r, httputil.InvalidParam(fmt.Sprintf("unknown account kind %q: use user", kind)))
		return
	}
	if err := a.limits.Registration.Check(a.auth.ClientIP(r)); err != nil {
		writeErr(w, r, err)
		return
	}
	var req registerRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	resp, err := a.register(r.Context(), &req)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, resp)
}

func (a *API) register(ctx context.Context, req *registerRequest) (*registerResponse, error) {
	if err := a.registrationPossible(ctx); err != nil {
		return nil, err
	}
	// The username is checked before auth, as Synapse does, so that a
	// client learns at the first request that the name is taken.
	var localpart string
	if req.Username != nil {
		localpart = strings.ToLower(*req.Username)
		if err := a.checkUsername(ctx, localpart); err != nil {
			return nil, err
		}
	}
	if req.Password != nil {
		if err := auth.CheckPasswordParam(*req.Password); err != nil {
			return nil, err
		}
	}
	passed, err := a.auth.CheckUIA(ctx, &auth.Operation{Name: "register", Flows: a.registerFlows()}, req.Auth)
	if err != nil {
		return nil, err
	}
	if req.Password == nil {
		// After auth, as Synapse: the session stays open for a retry.
		return nil, httputil.MissingParam("a password is required")
	}
	hash, err := auth.HashPassword(*req.Password, a.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	if localpart == "" {
		localpart = generateLocalpart()
	}
	resp := &registerResponse{UserID: a.auth.UserID(localpart), HomeServer: a.cfg.ServerName}
	err = a.db.WithTx(ctx, func(tx *storage.Tx) error {
		if err := tx.CreateAccount(ctx, localpart, hash, false); err != nil {
			if errors.Is(err, storage.ErrAccountExists) {
				return userInUse()
			}
			return err
		}
		if err := auth.FinishUIA(ctx, tx, passed); err != nil {
			return err
		}
		// Synapse starts every profile with the localpart as display name.
		name, _ := json.Marshal(localpart)
		if err := tx.SetProfileField(ctx, localpart, "displayname", name); err != nil {
			return err
		}
		if req.InhibitLogin {
			return nil
		}
		s, err := a.auth.Login(ctx, tx, auth.LoginRequest{
			Localpart:   localpart,
			DeviceID:    deref(req.DeviceID),
			DisplayName: req.InitialDeviceDisplayName,
			Refresh:     req.RefreshToken,
		})
		if err != nil {
			return err
		}
		resp.AccessToken, resp.DeviceID = s.AccessToken, s.DeviceID
		resp.RefreshToken, resp.ExpiresInMS = s.RefreshToken, s.ExpiresInMS
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// registrationPossible is 403 M_FORBIDDEN when nobody can register:
// registration is closed and no registration token exists. Checked first,
// as Synapse does, so that a closed server tells nothing about usernames.
func (a *API) registrationPossible(ctx context.Context) error {
	if a.cfg.OpenRegistration {
		return nil
	}
	has, err := a.db.HasRegistrationTokens(ctx)
	if err != nil {
		return err
	}
	if !has {
		return httputil.Forbidden("registration is disabled on this server")
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func userInUse() error {
	return httputil.NewError(http.StatusBadRequest, httputil.CodeUserInUse, "the user ID is already taken")
}

// checkUsername checks a desired localpart against the user ID grammar (the
// spec's appendices, "User Identifiers", which registration must follow
// strictly), Synapse's reservations, and existing accounts.
func (a *API) checkUsername(ctx context.Context, localpart string) error {
	if err := validLocalpart(localpart, a.cfg.ServerName); err != nil {
		return err
	}
	_, err := a.db.GetAccount(ctx, localpart)
	switch {
	case err == nil:
		return userInUse()
	case errors.Is(err, storage.ErrNotFound):
		return nil
	default:
		return err
	}
}

// validLocalpart is the grammar check of checkUsername, without the
// database: 400 M_INVALID_USERNAME.
func validLocalpart(localpart, serverName string) error {
	invalid := func(msg string) error {
		return httputil.NewError(http.StatusBadRequest, httputil.CodeInvalidUsername, msg)
	}
	if localpart == "" {
		return invalid("the username is empty")
	}
	for _, c := range []byte(localpart) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._=-/+", c) >= 0) {
			return invalid("a username may only contain a-z, 0-9 and . _ = - / +")
		}
	}
	if localpart[0] == '_' {
		// Synapse reserves these for application services.
		return invalid("a username may not begin with _")
	}
	if strings.Trim(localpart, "0123456789") == "" {
		// Synapse reserves purely numeric names (for guests).
		return invalid("a username may not be only digits")
	}
	if n := len("@" + localpart + ":" + serverName); n > 255 {
		return invalid(fmt.Sprintf("the user ID would be %d bytes long; the limit is 255", n))
	}
	return nil
}

// generateLocalpart picks a localpart for a registration without a
// username: "u" and 11 random characters, unlikely to collide (a collision
// is reported as M_USER_IN_USE and the client retries).
func generateLocalpart() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 11)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return "u" + string(b)
}

// getRegisterAvailable implements GET /_matrix/client/v3/register/available.
func (a *API) getRegisterAvailable(w http.ResponseWriter, r *http.Request) {
	if err := a.limits.Availability.Check(a.auth.ClientIP(r)); err != nil {
		writeErr(w, r, err)
		return
	}
	if err := a.registrationPossible(r.Context()); err != nil {
		writeErr(w, r, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("username") {
		writeErr(w, r, httputil.MissingParam("the username query parameter is required"))
		return
	}
	if err := a.checkUsername(r.Context(), strings.ToLower(q.Get("username"))); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]bool{"available": true})
}

// getTokenValidity implements GET
// /_matrix/client/v1/register/m.login.registration_token/validity. It is
// rate limited like registration, since it lets a client guess tokens.
func (a *API) getTokenValidity(w http.ResponseWriter, r *http.Request) {
	if err := a.limits.Registration.Check(a.auth.ClientIP(r)); err != nil {
		writeErr(w, r, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("token") {
		writeErr(w, r, httputil.MissingParam("the token query parameter is required"))
		return
	}
	t, err := a.db.GetRegistrationToken(r.Context(), q.Get("token"))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]bool{"valid": err == nil && t.Valid(nowMS())})
}
