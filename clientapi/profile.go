package clientapi

// Profiles (client-server-api "Profiles"): GET /profile/{userId}, and GET,
// PUT and DELETE /profile/{userId}/{keyName} for displayname, avatar_url,
// m.tz and the extended (namespaced) fields, within the spec's limits: keys
// of at most 255 bytes, a whole profile under 64 KiB.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerProfile(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/profile/{userId}", a.auth.Optional(a.getProfile)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/profile/{userId}/{keyName}", a.auth.Optional(a.getProfileField)).Methods(http.MethodGet)
	r.HandleFunc("/_matrix/client/v3/profile/{userId}/{keyName}", a.auth.Required(a.putProfileField)).Methods(http.MethodPut)
	r.HandleFunc("/_matrix/client/v3/profile/{userId}/{keyName}", a.auth.Required(a.deleteProfileField)).Methods(http.MethodDelete)
}

// Profile limits: the spec's key length and total size, and Synapse's
// display name and avatar URL lengths.
const (
	maxProfileKeyBytes  = 255
	maxProfileBytes     = 64 * 1024
	maxDisplayNameBytes = 256
	maxAvatarURLBytes   = 1000
)

// profileKeyPattern is the spec's keyName pattern: the two historical
// fields, m.tz, or a namespaced identifier.
var profileKeyPattern = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

func checkProfileKey(key string) error {
	if len(key) > maxProfileKeyBytes {
		return httputil.NewError(http.StatusBadRequest, "M_KEY_TOO_LARGE", fmt.Sprintf("profile keys are at most %d bytes", maxProfileKeyBytes))
	}
	if !profileKeyPattern.MatchString(key) {
		return httputil.InvalidParam("invalid profile key: use displayname, avatar_url, m.tz or a namespaced name such as com.example.field")
	}
	return nil
}

// profileOwner returns the localpart of the user of the path, which must
// be a local user with an account: remote profiles are not fetched yet
// (that needs the federation profile query), so they are 404 like unknown
// users.
func (a *API) profileOwner(ctx context.Context, r *http.Request) (string, error) {
	userID := httputil.PathVar(r, "userId")
	if !strings.HasPrefix(userID, "@") || !strings.Contains(userID, ":") {
		return "", httputil.InvalidParam("the user ID must look like @localpart:server")
	}
	lp, ok := a.localUser(userID)
	if !ok {
		return "", httputil.NotFound("profile not found")
	}
	if _, err := a.db.GetAccount(ctx, lp); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", httputil.NotFound("profile not found")
		}
		return "", err
	}
	return lp, nil
}

// pathProfile returns the profile of the path's user.
func (a *API) pathProfile(r *http.Request) (map[string]json.RawMessage, error) {
	lp, err := a.profileOwner(r.Context(), r)
	if err != nil {
		return nil, err
	}
	return a.db.Profile(r.Context(), lp)
}

// getProfile implements GET /_matrix/client/v3/profile/{userId}.
func (a *API) getProfile(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	p, err := a.pathProfile(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, p)
}

// getProfileField implements GET /_matrix/client/v3/profile/{userId}/{keyName}.
func (a *API) getProfileField(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	key := httputil.PathVar(r, "keyName")
	if err := checkProfileKey(key); err != nil {
		writeErr(w, r, err)
		return
	}
	p, err := a.pathProfile(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	v, ok := p[key]
	if !ok {
		writeErr(w, r, httputil.NotFound("the profile has no "+key))
		return
	}
	writeOK(w, r, map[string]json.RawMessage{key: v})
}

// ownProfileField returns the field a PUT or DELETE of
// /profile/{userId}/{keyName} changes, once checked, and checks that d may
// change the profile of the path's user: only its own.
func (a *API) ownProfileField(r *http.Request, d *auth.Device) (string, error) {
	key := httputil.PathVar(r, "keyName")
	if err := checkProfileKey(key); err != nil {
		return "", err
	}
	if httputil.PathVar(r, "userId") != d.UserID {
		return "", httputil.Forbidden("you may only change your own profile")
	}
	return key, nil
}

// changeProfileField changes d's profile field key in one transaction,
// then propagates the change (profileChanged).
func (a *API) changeProfileField(ctx context.Context, d *auth.Device, key string, change func(tx *storage.Tx) error) error {
	if err := a.db.WithTx(ctx, change); err != nil {
		return err
	}
	return a.profileChanged(ctx, d, key)
}

// putProfileField implements PUT /_matrix/client/v3/profile/{userId}/{keyName}.
func (a *API) putProfileField(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	key, err := a.ownProfileField(r, d)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var body map[string]json.RawMessage
	if err := httputil.ReadJSON(r, &body); err != nil {
		writeErr(w, r, err)
		return
	}
	value, ok := body[key]
	if !ok {
		writeErr(w, r, httputil.MissingParam(fmt.Sprintf("the body must have a %q property", key)))
		return
	}
	if err := checkProfileValue(key, value); err != nil {
		writeErr(w, r, err)
		return
	}
	err = a.changeProfileField(r.Context(), d, key, func(tx *storage.Tx) error {
		p, err := tx.Profile(r.Context(), d.Localpart())
		if err != nil {
			return err
		}
		p[key] = value
		if enc, err := json.Marshal(p); err != nil {
			return err
		} else if len(enc) >= maxProfileBytes {
			return httputil.NewError(http.StatusBadRequest, "M_PROFILE_TOO_LARGE", "the profile would be larger than 64 KiB")
		}
		return tx.SetProfileField(r.Context(), d.Localpart(), key, value)
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}

// checkProfileValue checks the value of a field the spec gives a type.
func checkProfileValue(key string, value json.RawMessage) error {
	var s string
	switch key {
	case "displayname", "avatar_url", "m.tz":
		if err := json.Unmarshal(value, &s); err != nil || string(value) == "null" {
			return httputil.BadJSON(key + " must be a string")
		}
	}
	switch key {
	case "displayname":
		if len(s) > maxDisplayNameBytes {
			return httputil.InvalidParam(fmt.Sprintf("displayname is longer than %d bytes", maxDisplayNameBytes))
		}
	case "avatar_url":
		if len(s) > maxAvatarURLBytes {
			return httputil.InvalidParam(fmt.Sprintf("avatar_url is longer than %d bytes", maxAvatarURLBytes))
		}
		// "" clears the avatar, as clients have always done.
		if s != "" && !strings.HasPrefix(s, "mxc://") {
			return httputil.InvalidParam("avatar_url must be an mxc:// URI")
		}
	}
	return nil
}

// deleteProfileField implements DELETE /_matrix/client/v3/profile/{userId}/{keyName}.
func (a *API) deleteProfileField(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	key, err := a.ownProfileField(r, d)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	err = a.changeProfileField(r.Context(), d, key, func(tx *storage.Tx) error {
		return tx.DeleteProfileField(r.Context(), d.Localpart(), key)
	})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}
