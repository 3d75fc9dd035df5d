package clientapi

// Administration of registration tokens, with the shape of Synapse's admin
// API (/_synapse/admin/v1/registration_tokens), which admin tools already
// speak: list (optionally only valid or invalid tokens), create (a chosen
// or random token, uses_allowed, expiry_time), get, update and delete.
// Server administrators only.

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

const regTokensPath = "/_synapse/admin/v1/registration_tokens"

func (a *API) registerRegistrationTokens(r *mux.Router) {
	r.HandleFunc(regTokensPath, a.auth.Required(adminOnly(a.listRegTokens))).Methods(http.MethodGet)
	r.HandleFunc(regTokensPath+"/new", a.auth.Required(adminOnly(a.newRegToken))).Methods(http.MethodPost)
	r.HandleFunc(regTokensPath+"/{token}", a.auth.Required(adminOnly(a.getRegToken))).Methods(http.MethodGet)
	r.HandleFunc(regTokensPath+"/{token}", a.auth.Required(adminOnly(a.putRegToken))).Methods(http.MethodPut)
	r.HandleFunc(regTokensPath+"/{token}", a.auth.Required(adminOnly(a.deleteRegToken))).Methods(http.MethodDelete)
}

// adminOnly lets only server administrators through (403 M_FORBIDDEN).
func adminOnly(h func(http.ResponseWriter, *http.Request, *auth.Device)) func(http.ResponseWriter, *http.Request, *auth.Device) {
	return func(w http.ResponseWriter, r *http.Request, d *auth.Device) {
		if !d.IsAdmin {
			writeErr(w, r, httputil.Forbidden("you are not a server admin"))
			return
		}
		h(w, r, d)
	}
}

type regTokenJSON struct {
	Token       string `json:"token"`
	UsesAllowed *int64 `json:"uses_allowed"`
	Pending     int64  `json:"pending"`
	Completed   int64  `json:"completed"`
	ExpiryTime  *int64 `json:"expiry_time"`
}

func toRegTokenJSON(t *storage.RegistrationToken) regTokenJSON {
	return regTokenJSON{Token: t.Token, UsesAllowed: t.UsesAllowed, Pending: t.Pending, Completed: t.Completed, ExpiryTime: t.ExpiryTime}
}

func (a *API) listRegTokens(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	var valid *bool
	if v := r.URL.Query().Get("valid"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeErr(w, r, httputil.InvalidParam("valid must be true or false"))
			return
		}
		valid = &b
	}
	ts, err := a.db.ListRegistrationTokens(r.Context())
	if err != nil {
		writeErr(w, r, err)
		return
	}
	now := nowMS()
	out := []regTokenJSON{}
	for i := range ts {
		if valid == nil || ts[i].Valid(now) == *valid {
			out = append(out, toRegTokenJSON(&ts[i]))
		}
	}
	writeOK(w, r, map[string]any{"registration_tokens": out})
}

// Token rules, as in Synapse: at most 64 characters from the URL-safe
// unreserved set; random tokens 16 characters by default.
const (
	maxRegTokenLength     = 64
	defaultRegTokenLength = 16
	regTokenChars         = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"
)

// newRegTokenRequest uses json.RawMessage where Synapse distinguishes
// absent, null and a value.
type newRegTokenRequest struct {
	Token *string `json:"token"`
	regTokenLimits
	Length *int `json:"length"`
}

// regTokenLimits are the fields of a token that creating and changing it
// both take.
type regTokenLimits struct {
	UsesAllowed json.RawMessage `json:"uses_allowed"`
	ExpiryTime  json.RawMessage `json:"expiry_time"`
}

// parse checks the limits: nil for absent or null (unlimited, never), and
// an expiry time in the future.
func (l regTokenLimits) parse() (uses, expiry *int64, err error) {
	if uses, err = optionalInt(l.UsesAllowed, "uses_allowed"); err != nil {
		return nil, nil, err
	}
	if expiry, err = optionalInt(l.ExpiryTime, "expiry_time"); err != nil {
		return nil, nil, err
	}
	if expiry != nil && *expiry < nowMS() {
		return nil, nil, httputil.InvalidParam("expiry_time must be in the future")
	}
	return uses, expiry, nil
}

// optionalInt parses an absent or null value (nil) or a non-negative
// integer; name is for the error.
func optionalInt(raw json.RawMessage, name string) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v int64
	if err := json.Unmarshal(raw, &v); err != nil || v < 0 {
		return nil, httputil.InvalidParam(name + " must be a non-negative integer or null")
	}
	return &v, nil
}

func (a *API) newRegToken(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	var req newRegTokenRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	uses, expiry, err := req.parse()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	t := storage.RegistrationToken{UsesAllowed: uses, ExpiryTime: expiry}
	if req.Token != nil {
		if req.Length != nil {
			writeErr(w, r, httputil.InvalidParam("give token or length, not both"))
			return
		}
		if err := checkRegToken(*req.Token); err != nil {
			writeErr(w, r, err)
			return
		}
		t.Token = *req.Token
		err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error { return tx.CreateRegistrationToken(r.Context(), t) })
		if errors.Is(err, storage.ErrTokenExists) {
			err = httputil.InvalidParam("the token already exists")
		}
	} else {
		length := defaultRegTokenLength
		if req.Length != nil {
			length = *req.Length
		}
		if length < 1 || length > maxRegTokenLength {
			writeErr(w, r, httputil.InvalidParam(fmt.Sprintf("length must be between 1 and %d", maxRegTokenLength)))
			return
		}
		// A short random token may collide; try a few times, as Synapse.
		for range 3 {
			t.Token = randomRegToken(length)
			err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error { return tx.CreateRegistrationToken(r.Context(), t) })
			if !errors.Is(err, storage.ErrTokenExists) {
				break
			}
		}
		if errors.Is(err, storage.ErrTokenExists) {
			err = httputil.NewError(http.StatusInternalServerError, httputil.CodeUnknown, "could not find a free random token; use a longer length")
		}
	}
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, toRegTokenJSON(&t))
}

func checkRegToken(tok string) error {
	if tok == "" || len(tok) > maxRegTokenLength {
		return httputil.InvalidParam(fmt.Sprintf("token must be 1 to %d characters", maxRegTokenLength))
	}
	for i := 0; i < len(tok); i++ {
		if strings.IndexByte(regTokenChars, tok[i]) < 0 {
			return httputil.InvalidParam("token may only contain A-Z, a-z, 0-9, '.', '_', '~' and '-'")
		}
	}
	return nil
}

func randomRegToken(n int) string {
	// Letters and digits only, as Synapse's random tokens.
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// regTokenNotFound is err, with storage's not found as the 404 of these
// endpoints.
func regTokenNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return httputil.NotFound("no such registration token")
	}
	return err
}

func (a *API) getRegToken(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	t, err := a.db.GetRegistrationToken(r.Context(), httputil.PathVar(r, "token"))
	err = regTokenNotFound(err)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, toRegTokenJSON(t))
}

// putRegToken changes only the fields present in the body; null means
// unlimited or never.
func (a *API) putRegToken(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	var req regTokenLimits
	if err := httputil.ReadJSON(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	uses, expiry, err := req.parse()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var t *storage.RegistrationToken
	err = a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		var err error
		t, err = tx.GetRegistrationToken(r.Context(), httputil.PathVar(r, "token"))
		if err != nil {
			return err
		}
		if req.UsesAllowed != nil {
			t.UsesAllowed = uses
		}
		if req.ExpiryTime != nil {
			t.ExpiryTime = expiry
		}
		return tx.UpdateRegistrationToken(r.Context(), t.Token, t.UsesAllowed, t.ExpiryTime)
	})
	err = regTokenNotFound(err)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, toRegTokenJSON(t))
}

func (a *API) deleteRegToken(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	err := a.db.WithTx(r.Context(), func(tx *storage.Tx) error {
		return tx.DeleteRegistrationToken(r.Context(), httputil.PathVar(r, "token"))
	})
	err = regTokenNotFound(err)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}
