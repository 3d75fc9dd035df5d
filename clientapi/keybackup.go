package clientapi

// Server-side key backups (client-server-api "Server-side key backups"):
// /room_keys/version and /room_keys/keys for all rooms, one room and one
// session. The rules are clientapi/e2ee's.

import (
	"encoding/json"
	"net/http"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/clientapi/e2ee"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

func (a *API) registerKeyBackup(route func(method, path string, h func(http.ResponseWriter, *http.Request, *auth.Device))) {
	route(http.MethodPost, "/room_keys/version", a.postBackupVersion)
	route(http.MethodGet, "/room_keys/version", a.getBackupVersion)
	route(http.MethodGet, "/room_keys/version/{version}", a.getBackupVersion)
	route(http.MethodPut, "/room_keys/version/{version}", a.putBackupVersion)
	route(http.MethodDelete, "/room_keys/version/{version}", a.deleteBackupVersion)
	for _, path := range []string{"/room_keys/keys", "/room_keys/keys/{roomId}", "/room_keys/keys/{roomId}/{sessionId}"} {
		route(http.MethodPut, path, a.putBackupKeys)
		route(http.MethodGet, path, a.getBackupKeys)
		route(http.MethodDelete, path, a.deleteBackupKeys)
	}
}

type backupVersionRequest struct {
	Algorithm *string         `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   *string         `json:"version"`
}

// postBackupVersion implements POST /room_keys/version.
func (a *API) postBackupVersion(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	var req backupVersionRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	v, err := a.e2ee.CreateBackup(r.Context(), d.UserID, req.Algorithm, req.AuthData)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, map[string]string{"version": v})
}

// pathVersion reads {version}, absent meaning the current one (0).
func pathVersion(r *http.Request) (int64, error) {
	s := httputil.PathVar(r, "version")
	if s == "" {
		return 0, nil
	}
	return e2ee.ParseVersion(s)
}

// getBackupVersion implements GET /room_keys/version and
// GET /room_keys/version/{version}.
func (a *API) getBackupVersion(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	v, err := pathVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	info, err := a.e2ee.Backup(r.Context(), d.UserID, v)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, info)
}

// putBackupVersion implements PUT /room_keys/version/{version}.
func (a *API) putBackupVersion(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	v, err := pathVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	var req backupVersionRequest
	if _, err := readObjectInto(r, &req); err != nil {
		writeErr(w, r, err)
		return
	}
	if err := a.e2ee.UpdateBackup(r.Context(), d.UserID, v, req.Algorithm, req.AuthData, req.Version); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}

// deleteBackupVersion implements DELETE /room_keys/version/{version}.
func (a *API) deleteBackupVersion(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	v, err := pathVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if err := a.e2ee.DeleteBackup(r.Context(), d.UserID, v); err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, emptyObject)
}

// queryVersion reads the required ?version= of the key endpoints.
func queryVersion(r *http.Request) (string, error) {
	s := r.URL.Query().Get("version")
	if s == "" {
		return "", httputil.MissingParam(`the "version" parameter is required`)
	}
	return s, nil
}

type roomBackupJSON struct {
	Sessions map[string]*e2ee.BackupKeyData `json:"sessions"`
}

// putBackupKeys implements PUT /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) putBackupKeys(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	vs, err := queryVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	roomID, sessionID := httputil.PathVar(r, "roomId"), httputil.PathVar(r, "sessionId")
	rooms := map[string]roomBackupJSON{}
	switch {
	case sessionID != "":
		var k e2ee.BackupKeyData
		if _, err := readObjectInto(r, &k); err != nil {
			writeErr(w, r, err)
			return
		}
		rooms[roomID] = roomBackupJSON{Sessions: map[string]*e2ee.BackupKeyData{sessionID: &k}}
	case roomID != "":
		var room roomBackupJSON
		if _, err := readObjectInto(r, &room); err != nil {
			writeErr(w, r, err)
			return
		}
		rooms[roomID] = room
	default:
		var all struct {
			Rooms map[string]roomBackupJSON `json:"rooms"`
		}
		if _, err := readObjectInto(r, &all); err != nil {
			writeErr(w, r, err)
			return
		}
		rooms = all.Rooms
	}
	var keys []storage.BackupKey
	for room, rb := range rooms {
		for session, kd := range rb.Sessions {
			if kd == nil {
				writeErr(w, r, httputil.BadJSON("the key of session "+session+" is null"))
				return
			}
			k, err := e2ee.CheckBackupKey(room, session, kd)
			if err != nil {
				writeErr(w, r, err)
				return
			}
			keys = append(keys, k)
		}
	}
	// A version that is not a number is not the current one: 403 with the
	// current version, as for any other.
	v, err := e2ee.ParseVersion(vs)
	if err != nil {
		v = -1
	}
	res, err := a.e2ee.PutBackupKeys(r.Context(), d.UserID, v, keys)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, res)
}

// getBackupKeys implements GET /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) getBackupKeys(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	vs, err := queryVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	v, err := e2ee.ParseVersion(vs)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	roomID, sessionID := httputil.PathVar(r, "roomId"), httputil.PathVar(r, "sessionId")
	keys, err := a.e2ee.BackupKeys(r.Context(), d.UserID, v, roomID, sessionID)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	switch {
	case sessionID != "":
		if len(keys) == 0 {
			writeErr(w, r, httputil.NotFound("no backed-up key for this session"))
			return
		}
		writeOK(w, r, e2ee.KeyData(keys[0]))
	case roomID != "":
		sessions := map[string]any{}
		for _, k := range keys {
			sessions[k.SessionID] = e2ee.KeyData(k)
		}
		writeOK(w, r, map[string]any{"sessions": sessions})
	default:
		rooms := map[string]map[string]map[string]any{}
		for _, k := range keys {
			if rooms[k.RoomID] == nil {
				rooms[k.RoomID] = map[string]map[string]any{"sessions": {}}
			}
			rooms[k.RoomID]["sessions"][k.SessionID] = e2ee.KeyData(k)
		}
		writeOK(w, r, map[string]any{"rooms": rooms})
	}
}

// deleteBackupKeys implements DELETE /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) deleteBackupKeys(w http.ResponseWriter, r *http.Request, d *auth.Device) {
	vs, err := queryVersion(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	v, err := e2ee.ParseVersion(vs)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	res, err := a.e2ee.DeleteBackupKeys(r.Context(), d.UserID, v, httputil.PathVar(r, "roomId"), httputil.PathVar(r, "sessionId"))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeOK(w, r, res)
}
