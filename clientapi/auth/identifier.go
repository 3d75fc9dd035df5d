package auth

// User identifiers of /login and of the m.login.password UIA stage
// (client-server-api "Identifier types"), with the deprecated top-level
// "user", "medium" and "address" fields that older clients still send.

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/myelin-chat/myelin/internal/httputil"
)

// Identifier types.
const (
	IDUser       = "m.id.user"
	IDThirdParty = "m.id.thirdparty"
	IDPhone      = "m.id.phone"
)

// passwordFields is the part of a login or m.login.password body that names
// the user and the password.
type passwordFields struct {
	Identifier json.RawMessage `json:"identifier"`
	User       *string         `json:"user"`    // deprecated
	Medium     *string         `json:"medium"`  // deprecated
	Address    *string         `json:"address"` // deprecated
	Password   *string         `json:"password"`
}

type identifier struct {
	Type string `json:"type"`
	User string `json:"user"`
}

// noThirdParty is the answer to a third-party or phone identifier: this
// server binds no 3PIDs to accounts, so none can identify a user. Synapse
// answers an unknown 3PID with 403 M_FORBIDDEN.
func noThirdParty() error {
	return httputil.Forbidden("no third-party identifier (e-mail address or phone number) is bound to an account on this server")
}

// parsePasswordFields reads the identifier and password of body (a JSON
// object) and returns the user string as given (a localpart or a user ID)
// and the password.
func parsePasswordFields(body json.RawMessage) (user, password string, err error) {
	var f passwordFields
	if err := json.Unmarshal(body, &f); err != nil {
		return "", "", httputil.BadJSON("identifier, user and password must be an object and strings")
	}
	switch {
	case len(f.Identifier) > 0 && string(f.Identifier) != "null":
		var id identifier
		if err := json.Unmarshal(f.Identifier, &id); err != nil {
			return "", "", httputil.BadJSON(`"identifier" must be an object with a string "type"`)
		}
		switch id.Type {
		case IDUser:
			if id.User == "" {
				return "", "", httputil.MissingParam(`the m.id.user identifier has no "user"`)
			}
			user = id.User
		case IDThirdParty, IDPhone:
			return "", "", noThirdParty()
		case "":
			return "", "", httputil.MissingParam(`the identifier has no "type"`)
		default:
			return "", "", httputil.NewError(http.StatusBadRequest, httputil.CodeUnknown, "unknown identifier type "+id.Type)
		}
	case f.User != nil:
		user = *f.User
	case f.Medium != nil || f.Address != nil:
		return "", "", noThirdParty()
	default:
		return "", "", httputil.MissingParam(`no "identifier" naming the user`)
	}
	if f.Password == nil {
		return "", "", httputil.MissingParam(`"password" is missing`)
	}
	return user, *f.Password, nil
}

// localpartOf returns the localpart a user string names on this server: a
// bare localpart, or a user ID of this server. ok is false for a user ID of
// another server or an unparsable one.
func (a *Authenticator) localpartOf(user string) (localpart string, ok bool) {
	if !strings.HasPrefix(user, "@") {
		return user, user != ""
	}
	lp, server, found := strings.Cut(user[1:], ":")
	if !found || lp == "" || server != a.serverName {
		return "", false
	}
	return lp, true
}
