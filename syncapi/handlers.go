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
