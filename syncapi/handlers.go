package syncapi

// Helpers shared by the handlers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/myelin-chat/myelin/clientapi/auth"
	"github.com/myelin-chat/myelin/internal/httputil"
	"github.com/myelin-chat/myelin/storage"
)

// requireSelf refuses a request about another user's private data.
func requireSelf(d *auth.Device, userID, what string) error {
	if userID != d.UserID {
		return httputil.Forbidden("cannot " + what + " for other users")
	}
	return nil
}

// selfInRoom reads the userId and roomId path variables of a request about
// the user's own data in a room (tags, typing): userId must be d's.
func selfInRoom(r *http.Request, d *auth.Device, what string) (userID, roomID string, err error) {
	userID = httputil.PathVar(r, "userId")
	if err := requireSelf(d, userID, what); err != nil {
		return "", "", err
	}
	if roomID, err = roomIDParam(r); err != nil {
		return "", "", err
	}
	return userID, roomID, nil
}

// roomIDParam returns the roomId path variable, or 400 M_INVALID_PARAM
// when it is not a room ID. (Room IDs of room version 12 have no server
// name, so only the sigil is required.)
func roomIDParam(r *http.Request) (string, error) {
	id := httputil.PathVar(r, "roomId")
	if len(id) < 2 || id[0] != '!' {
		return "", httputil.InvalidParam(strconv.Quote(id) + " is not a valid room ID")
	}
	return id, nil
}

// eventIDParam returns the eventId path variable, or 400 M_INVALID_PARAM.
func eventIDParam(r *http.Request) (string, error) {
	id := httputil.PathVar(r, "eventId")
	if len(id) < 2 || id[0] != '$' {
		return "", httputil.InvalidParam(strconv.Quote(id) + " is not a valid event ID")
	}
	return id, nil
}

// isLocalUser reports whether userID is a user of this server.
func (a *API) isLocalUser(userID string) bool {
	n := len(a.serverName)
	return len(userID) > n+2 && userID[0] == '@' && userID[len(userID)-n-1] == ':' && userID[len(userID)-n:] == a.serverName
}

var emptyObject = struct{}{}

func writeEmpty(w http.ResponseWriter, r *http.Request) {
	httputil.WriteJSON(w, r, http.StatusOK, emptyObject)
}

// readerOf returns a request body reading raw.
func readerOf(raw []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(raw)) }

// jsonRaw is an event already in JSON.
type jsonRaw = json.RawMessage

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// makeRoom drops about half of the entries of m when it holds limit or
// more, so that a per-user or per-device cache stays bounded without
// tracking use (which entries go is random; they are rebuilt on demand).
func makeRoom[K comparable, V any](m map[K]V, limit int) {
	if len(m) < limit {
		return
	}
	n := 0
	for k := range m {
		delete(m, k)
		if n++; n >= limit/2 {
			return
		}
	}
}
