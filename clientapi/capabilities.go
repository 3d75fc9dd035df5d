package clientapi

// GET /_matrix/client/v3/capabilities (client-server-api "Capabilities
// negotiation"): what this server lets the user do.

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/roomserver/pdu"
)

func (a *API) registerCapabilities(r *mux.Router) {
	r.HandleFunc("/_matrix/client/v3/capabilities", a.auth.Required(a.getCapabilities)).Methods(http.MethodGet)
}

type enabled struct {
	Enabled bool `json:"enabled"`
}

func (a *API) getCapabilities(w http.ResponseWriter, r *http.Request, _ *auth.Device) {
	available := map[string]string{}
	for _, id := range pdu.KnownRoomVersions() {
		v, err := pdu.GetRoomVersion(id)
		if err != nil {
			continue // unreachable: the list and the table agree
		}
		if v.Stable {
			available[id] = "stable"
		} else {
			available[id] = "unstable"
		}
	}
	writeOK(w, r, map[string]any{"capabilities": map[string]any{
		"m.change_password": enabled{true},
		"m.room_versions":   map[string]any{"default": pdu.DefaultRoomVersion, "available": available},
		"m.set_displayname": enabled{true},
		"m.set_avatar_url":  enabled{true},
		// No third-party identifiers are bound on this server, and login
		// tokens (QR login) are not offered.
		"m.3pid_changes":    enabled{false},
		"m.get_login_token": enabled{false},
		"m.profile_fields":  enabled{true},
	}})
}
